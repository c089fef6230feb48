//! `cron`: Weft's scheduler as a component. The job table lives here; the
//! host passes the time in, sleeps until `next-wake`, delivers what `tick`
//! returns and persists `export-state`.

// The generated export glue takes one argument per flattened field.
#![allow(clippy::too_many_arguments)]

// Generated from the WIT, which documents it; private, so none of it is this crate's API.
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "cron" });
}
use bindings::*;

mod schedule;

use std::cell::RefCell;

use schedule::Schedule;
use serde::{Deserialize, Serialize};

const MAX_JOBS: usize = 10_000;
const MAX_PAYLOAD: usize = 64 * 1024;
const STATE_VERSION: u32 = 1;

#[derive(Clone, Serialize, Deserialize)]
struct Entry {
    id: String,
    owner: String,
    schedule: String,
    target: String,
    payload: String,
    next_ns: Option<u64>,
    created_ns: u64,
    fired_count: u64,
}

#[derive(Default, Serialize, Deserialize)]
struct Table {
    version: u32,
    next_id: u64,
    jobs: Vec<Entry>,
}

thread_local! {
    static TABLE: RefCell<Table> = RefCell::new(Table { version: STATE_VERSION, ..Table::default() });
}

fn job(e: &Entry) -> Job {
    Job {
        id: e.id.clone(),
        owner: e.owner.clone(),
        spec: JobSpec {
            schedule: e.schedule.clone(),
            target: e.target.clone(),
            payload: e.payload.clone(),
        },
        next_ns: e.next_ns,
        created_ns: e.created_ns,
        fired_count: e.fired_count,
    }
}

struct CronComponent;

impl Guest for CronComponent {
    fn add(owner: String, spec: JobSpec, now_ns: u64) -> Result<Job, String> {
        if spec.target.is_empty() {
            return Err("the job has no target agent".into());
        }
        if spec.payload.len() > MAX_PAYLOAD {
            return Err(format!("payload is larger than {MAX_PAYLOAD} bytes"));
        }
        serde_json::from_str::<serde_json::Value>(&spec.payload)
            .map_err(|e| format!("payload is not JSON: {e}"))?;
        let sched = Schedule::parse(&spec.schedule)?;
        let next = sched
            .next_after(now_ns, None)
            .ok_or_else(|| format!("`{}` never fires after now", spec.schedule))?;
        TABLE.with_borrow_mut(|t| {
            if t.jobs.len() >= MAX_JOBS {
                return Err(format!("the job table is full ({MAX_JOBS} jobs)"));
            }
            t.next_id += 1;
            let e = Entry {
                id: format!("job-{}", t.next_id),
                owner,
                schedule: spec.schedule,
                target: spec.target,
                payload: spec.payload,
                next_ns: Some(next),
                created_ns: now_ns,
                fired_count: 0,
            };
            let j = job(&e);
            t.jobs.push(e);
            Ok(j)
        })
    }

    fn remove(owner: String, id: String) -> Result<(), String> {
        TABLE.with_borrow_mut(|t| {
            let i = t
                .jobs
                .iter()
                .position(|j| j.id == id)
                .ok_or_else(|| format!("no job `{id}`"))?;
            if t.jobs[i].owner != owner && owner != "kernel" {
                return Err(format!("job `{id}` belongs to `{}`", t.jobs[i].owner));
            }
            t.jobs.remove(i);
            Ok(())
        })
    }

    fn list() -> Vec<Job> {
        TABLE.with_borrow(|t| t.jobs.iter().map(job).collect())
    }

    fn next_wake(_now_ns: u64) -> Option<u64> {
        TABLE.with_borrow(|t| t.jobs.iter().filter_map(|j| j.next_ns).min())
    }

    fn tick(now_ns: u64) -> Vec<Fired> {
        TABLE.with_borrow_mut(|t| {
            let mut fired = Vec::new();
            for j in t.jobs.iter_mut() {
                let Some(due) = j.next_ns.filter(|n| *n <= now_ns) else {
                    continue;
                };
                fired.push(Fired {
                    job_id: j.id.clone(),
                    target: j.target.clone(),
                    payload: j.payload.clone(),
                    scheduled_ns: due,
                });
                j.fired_count += 1;
                // A schedule that no longer parses (an older table) stops.
                j.next_ns = Schedule::parse(&j.schedule)
                    .ok()
                    .filter(|s| !s.one_shot())
                    .and_then(|s| s.next_after(now_ns, Some(due)));
            }
            t.jobs.retain(|j| j.next_ns.is_some());
            fired
        })
    }

    fn export_state() -> String {
        TABLE.with_borrow(|t| serde_json::to_string(t).unwrap_or_default())
    }

    fn import_state(state: String) -> Result<(), String> {
        let t: Table =
            serde_json::from_str(&state).map_err(|e| format!("cron state is not valid: {e}"))?;
        if t.version != STATE_VERSION {
            return Err(format!(
                "cron state version {} is not {STATE_VERSION}",
                t.version
            ));
        }
        for j in &t.jobs {
            Schedule::parse(&j.schedule).map_err(|e| format!("job `{}`: {e}", j.id))?;
        }
        TABLE.with_borrow_mut(|cur| *cur = t);
        Ok(())
    }
}

export!(CronComponent);
