//! A small recursive-descent evaluator. Precedence, lowest first:
//! `+ -`, `* / %`, unary `-`, `^` (right-associative), atoms.

use std::collections::BTreeMap;

pub fn eval(src: &str, vars: &BTreeMap<String, f64>) -> Result<f64, String> {
    let mut p = Parser {
        src: src.as_bytes(),
        pos: 0,
        vars,
        depth: 0,
    };
    let v = p.sum()?;
    p.skip_ws();
    if p.pos != p.src.len() {
        return Err(format!(
            "unexpected `{}` at column {}",
            p.src[p.pos] as char,
            p.pos + 1
        ));
    }
    Ok(v)
}

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    vars: &'a BTreeMap<String, f64>,
    depth: u32,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.src.len() && self.src[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.src.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn sum(&mut self) -> Result<f64, String> {
        let mut v = self.product()?;
        loop {
            if self.eat(b'+') {
                v += self.product()?;
            } else if self.eat(b'-') {
                v -= self.product()?;
            } else {
                return Ok(v);
            }
        }
    }

    fn product(&mut self) -> Result<f64, String> {
        let mut v = self.unary()?;
        loop {
            if self.eat(b'*') {
                v *= self.unary()?;
            } else if self.eat(b'/') {
                let d = self.unary()?;
                if d == 0.0 {
                    return Err("division by zero".into());
                }
                v /= d;
            } else if self.eat(b'%') {
                let d = self.unary()?;
                if d == 0.0 {
                    return Err("modulo by zero".into());
                }
                v %= d;
            } else {
                return Ok(v);
            }
        }
    }

    fn unary(&mut self) -> Result<f64, String> {
        if self.eat(b'-') {
            return Ok(-self.unary()?);
        }
        if self.eat(b'+') {
            return self.unary();
        }
        self.power()
    }

    fn power(&mut self) -> Result<f64, String> {
        let base = self.atom()?;
        if self.eat(b'^') {
            let exp = self.unary()?;
            return Ok(base.powf(exp));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<f64, String> {
        self.depth += 1;
        if self.depth > 200 {
            return Err("expression nests too deeply".into());
        }
        let r = self.atom_inner();
        self.depth -= 1;
        r
    }

    fn atom_inner(&mut self) -> Result<f64, String> {
        self.skip_ws();
        let start = self.pos;
        match self.src.get(self.pos) {
            None => Err("unexpected end of expression".into()),
            Some(b'(') => {
                self.pos += 1;
                let v = self.sum()?;
                if !self.eat(b')') {
                    return Err(format!("missing `)` for `(` at column {}", start + 1));
                }
                Ok(v)
            }
            Some(c) if c.is_ascii_digit() || *c == b'.' => {
                while self.pos < self.src.len()
                    && (self.src[self.pos].is_ascii_digit()
                        || matches!(self.src[self.pos], b'.' | b'e' | b'E')
                        || (matches!(self.src[self.pos], b'+' | b'-')
                            && matches!(self.src[self.pos - 1], b'e' | b'E')))
                {
                    self.pos += 1;
                }
                let text =
                    std::str::from_utf8(&self.src[start..self.pos]).map_err(|e| e.to_string())?;
                text.parse::<f64>()
                    .map_err(|_| format!("bad number `{text}` at column {}", start + 1))
            }
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                while self.pos < self.src.len()
                    && (self.src[self.pos].is_ascii_alphanumeric() || self.src[self.pos] == b'_')
                {
                    self.pos += 1;
                }
                let name =
                    std::str::from_utf8(&self.src[start..self.pos]).map_err(|e| e.to_string())?;
                if self.eat(b'(') {
                    let mut args = vec![self.sum()?];
                    while self.eat(b',') {
                        args.push(self.sum()?);
                    }
                    if !self.eat(b')') {
                        return Err(format!("missing `)` after arguments of `{name}`"));
                    }
                    return call(name, &args);
                }
                match name {
                    "pi" => Ok(std::f64::consts::PI),
                    "e" => Ok(std::f64::consts::E),
                    _ => self.vars.get(name).copied().ok_or_else(|| {
                        format!("unknown variable `{name}` at column {}", start + 1)
                    }),
                }
            }
            Some(c) => Err(format!(
                "unexpected `{}` at column {}",
                *c as char,
                start + 1
            )),
        }
    }
}

fn call(name: &str, args: &[f64]) -> Result<f64, String> {
    let one = |f: fn(f64) -> f64| match args {
        [x] => Ok(f(*x)),
        _ => Err(format!("`{name}` takes 1 argument, got {}", args.len())),
    };
    match name {
        "sqrt" => one(f64::sqrt),
        "abs" => one(f64::abs),
        "ln" => one(f64::ln),
        "log10" => one(f64::log10),
        "sin" => one(f64::sin),
        "cos" => one(f64::cos),
        "tan" => one(f64::tan),
        "floor" => one(f64::floor),
        "ceil" => one(f64::ceil),
        "round" => one(f64::round),
        "min" | "max" if args.is_empty() => Err(format!("`{name}` needs at least 1 argument")),
        "min" => Ok(args.iter().copied().fold(f64::INFINITY, f64::min)),
        "max" => Ok(args.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
        _ => Err(format!("unknown function `{name}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(s: &str) -> Result<f64, String> {
        eval(s, &BTreeMap::from([("x".to_string(), 3.0)]))
    }

    #[test]
    fn precedence_and_functions() {
        assert_eq!(ev("1 + 2 * 3").unwrap(), 7.0);
        assert_eq!(ev("2 ^ 3 ^ 2").unwrap(), 512.0);
        assert_eq!(ev("-2 ^ 2").unwrap(), -4.0);
        assert_eq!(ev("2 * (x + 1)").unwrap(), 8.0);
        assert_eq!(ev("max(1, x, 2)").unwrap(), 3.0);
        assert_eq!(ev("1e3 + 1").unwrap(), 1001.0);
        assert!(ev("1 / 0").is_err());
        assert!(ev("(1").is_err());
        assert!(ev("y").is_err());
        assert!(ev("1 +").is_err());
    }
}
