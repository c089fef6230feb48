//! Schedules: 5/6-field cron expressions (UTC, via `croner`), `every <n><unit>`
//! and one-shot `at <RFC 3339>`. All times are ns since the UNIX epoch.

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

pub enum Schedule {
    Cron(Box<Cron>),
    Every(u64),
    At(u64),
}

const NS_PER_MS: u64 = 1_000_000;

impl Schedule {
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if let Some(d) = t.strip_prefix("every ") {
            return parse_duration(d.trim()).map(Schedule::Every);
        }
        if let Some(at) = t.strip_prefix("at ") {
            let dt = DateTime::parse_from_rfc3339(at.trim())
                .map_err(|e| format!("`{at}` is not an RFC 3339 time: {e}"))?;
            let ns = dt
                .timestamp_nanos_opt()
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| format!("`{at}` is out of range"))?;
            return Ok(Schedule::At(ns));
        }
        let fields = t.split_whitespace().count();
        if !(t.starts_with('@') || fields == 5 || fields == 6) {
            return Err(format!(
                "`{t}`: expected a 5- or 6-field cron expression, `every <n><ms|s|m|h|d>` \
                 or `at <RFC 3339 time>` ({fields} fields)"
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(t)
            .map_err(|e| format!("`{t}`: {e}"))?;
        Ok(Schedule::Cron(Box::new(cron)))
    }

    /// The first time strictly after `after_ns` the schedule fires, given
    /// that it was last due at `prev_ns` (for `every`, which keeps its phase).
    pub fn next_after(&self, after_ns: u64, prev_ns: Option<u64>) -> Option<u64> {
        match self {
            Schedule::At(t) => (*t > after_ns).then_some(*t),
            Schedule::Every(iv) => match prev_ns {
                Some(p) if p <= after_ns => {
                    let k = (after_ns - p) / iv + 1;
                    p.checked_add(k.checked_mul(*iv)?)
                }
                Some(p) => Some(p),
                None => after_ns.checked_add(*iv),
            },
            Schedule::Cron(c) => {
                let now = to_dt(after_ns)?;
                let next = c.find_next_occurrence(&now, false).ok()?;
                next.timestamp_nanos_opt()
                    .and_then(|n| u64::try_from(n).ok())
            }
        }
    }

    pub fn one_shot(&self) -> bool {
        matches!(self, Schedule::At(_))
    }
}

fn to_dt(ns: u64) -> Option<DateTime<Utc>> {
    let secs = i64::try_from(ns / 1_000_000_000).ok()?;
    DateTime::from_timestamp(secs, (ns % 1_000_000_000) as u32)
}

fn parse_duration(d: &str) -> Result<u64, String> {
    let split = d
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`every {d}`: missing unit (ms, s, m, h or d)"))?;
    let (num, unit) = d.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`every {d}`: expected a whole number before the unit"))?;
    let unit_ms = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        u => {
            return Err(format!(
                "`every {d}`: unknown unit `{u}` (ms, s, m, h or d)"
            ))
        }
    };
    let ns = n
        .checked_mul(unit_ms)
        .and_then(|ms| ms.checked_mul(NS_PER_MS))
        .ok_or_else(|| format!("`every {d}` is too long"))?;
    if ns < 10 * NS_PER_MS {
        return Err(format!("`every {d}` is shorter than the minimum of 10ms"));
    }
    Ok(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000_000_000; // 2023-11-14T22:13:20Z

    #[test]
    fn schedules() {
        let s = Schedule::parse("every 30s").unwrap();
        assert_eq!(s.next_after(T0, None), Some(T0 + 30_000_000_000));
        assert_eq!(
            s.next_after(T0 + 65_000_000_000, Some(T0)),
            Some(T0 + 90_000_000_000)
        );
        let c = Schedule::parse("*/5 * * * *").unwrap();
        let n = c.next_after(T0, None).unwrap();
        assert_eq!((n / 1_000_000_000) % 300, 0);
        let c6 = Schedule::parse("*/10 * * * * *").unwrap();
        assert_eq!(c6.next_after(T0, None), Some(T0 + 10_000_000_000));
        let at = Schedule::parse("at 2030-01-01T00:00:00Z").unwrap();
        assert!(at.one_shot() && at.next_after(T0, None).is_some());
        for bad in [
            "every 5",
            "every 5y",
            "* * *",
            "at tomorrow",
            "61 * * * *",
            "every 1ms",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }
}
