//! A tiny arithmetic language for sizes in suite files: `n`, `12*n`,
//! `(n + 255) / 256`, `2*m*n*k`. Integers and floats, `+ - * / %`, unary
//! minus, parentheses, and sweep parameters by name. Integer evaluation is
//! checked (overflow and division by zero are errors, `/` truncates).

use std::fmt;

use crate::plan::{ParamPoint, ParamValue};

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Int(i64),
    Float(f64),
    Var(String),
    Neg(Box<Expr>),
    Bin(Op, Box<Expr>, Box<Expr>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
            Op::Div => "/",
            Op::Rem => "%",
        })
    }
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    text: &'a str,
}

/// Parses an expression; errors quote the text and the position.
pub fn parse(text: &str) -> Result<Expr, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
        text,
    };
    let e = p.sum()?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(p.err("unexpected character"));
    }
    Ok(e)
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        format!(
            "invalid expression `{}`: {what} at column {}",
            self.text,
            self.pos + 1
        )
    }
    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.pos).copied()
    }
    fn sum(&mut self) -> Result<Expr, String> {
        let mut lhs = self.product()?;
        while let Some(c @ (b'+' | b'-')) = self.peek() {
            self.pos += 1;
            let rhs = self.product()?;
            let op = if c == b'+' { Op::Add } else { Op::Sub };
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }
    fn product(&mut self) -> Result<Expr, String> {
        let mut lhs = self.unary()?;
        while let Some(c @ (b'*' | b'/' | b'%')) = self.peek() {
            self.pos += 1;
            let rhs = self.unary()?;
            let op = match c {
                b'*' => Op::Mul,
                b'/' => Op::Div,
                _ => Op::Rem,
            };
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }
    fn unary(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some(b'-') => {
                self.pos += 1;
                Ok(Expr::Neg(Box::new(self.unary()?)))
            }
            Some(b'+') => {
                self.pos += 1;
                self.unary()
            }
            _ => self.atom(),
        }
    }
    fn atom(&mut self) -> Result<Expr, String> {
        match self.peek() {
            None => Err(self.err("expected a number, a name or `(`")),
            Some(b'(') => {
                self.pos += 1;
                let e = self.sum()?;
                if self.peek() != Some(b')') {
                    return Err(self.err("expected `)`"));
                }
                self.pos += 1;
                Ok(e)
            }
            Some(c) if c.is_ascii_digit() || c == b'.' => {
                let start = self.pos;
                while self.pos < self.s.len()
                    && (self.s[self.pos].is_ascii_alphanumeric()
                        || matches!(self.s[self.pos], b'.' | b'_')
                        || (matches!(self.s[self.pos], b'+' | b'-')
                            && matches!(self.s[self.pos - 1], b'e' | b'E')))
                {
                    self.pos += 1;
                }
                let lit: String = self.text[start..self.pos]
                    .chars()
                    .filter(|c| *c != '_')
                    .collect();
                if let Ok(i) = lit.parse::<i64>() {
                    Ok(Expr::Int(i))
                } else if let Ok(f) = lit.parse::<f64>() {
                    Ok(Expr::Float(f))
                } else {
                    self.pos = start;
                    Err(self.err(&format!("invalid number `{lit}`")))
                }
            }
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.pos;
                while self.pos < self.s.len()
                    && (self.s[self.pos].is_ascii_alphanumeric() || self.s[self.pos] == b'_')
                {
                    self.pos += 1;
                }
                Ok(Expr::Var(self.text[start..self.pos].to_string()))
            }
            Some(_) => Err(self.err("unexpected character")),
        }
    }
}

fn lookup<'a>(name: &str, vars: &'a ParamPoint) -> Result<&'a ParamValue, String> {
    vars.get(name).ok_or_else(|| {
        let known: Vec<&str> = vars.keys().map(|k| k.as_str()).collect();
        format!(
            "unknown parameter `{name}` (known: {})",
            if known.is_empty() {
                "none; add it to `params`".to_string()
            } else {
                known.join(", ")
            }
        )
    })
}

impl Expr {
    /// Evaluates with integer arithmetic; a float anywhere is an error.
    pub fn eval_int(&self, vars: &ParamPoint) -> Result<i64, String> {
        let overflow = || "integer overflow".to_string();
        match self {
            Expr::Int(i) => Ok(*i),
            Expr::Float(f) => Err(format!("{f} is not an integer")),
            Expr::Var(name) => match lookup(name, vars)? {
                ParamValue::Int(i) => Ok(*i),
                other => Err(format!("parameter `{name}` = {other} is not an integer")),
            },
            Expr::Neg(e) => e.eval_int(vars)?.checked_neg().ok_or_else(overflow),
            Expr::Bin(op, a, b) => {
                let (a, b) = (a.eval_int(vars)?, b.eval_int(vars)?);
                match op {
                    Op::Add => a.checked_add(b).ok_or_else(overflow),
                    Op::Sub => a.checked_sub(b).ok_or_else(overflow),
                    Op::Mul => a.checked_mul(b).ok_or_else(overflow),
                    Op::Div | Op::Rem if b == 0 => Err("division by zero".into()),
                    Op::Div => Ok(a / b),
                    Op::Rem => Ok(a % b),
                }
            }
        }
    }

    /// Evaluates in floating point (`/` is exact division).
    pub fn eval_f64(&self, vars: &ParamPoint) -> Result<f64, String> {
        match self {
            Expr::Int(i) => Ok(*i as f64),
            Expr::Float(f) => Ok(*f),
            Expr::Var(name) => lookup(name, vars)?
                .as_f64()
                .ok_or_else(|| format!("parameter `{name}` is not a number")),
            Expr::Neg(e) => Ok(-e.eval_f64(vars)?),
            Expr::Bin(op, a, b) => {
                let (a, b) = (a.eval_f64(vars)?, b.eval_f64(vars)?);
                match op {
                    Op::Add => Ok(a + b),
                    Op::Sub => Ok(a - b),
                    Op::Mul => Ok(a * b),
                    Op::Div | Op::Rem if b == 0.0 => Err("division by zero".into()),
                    Op::Div => Ok(a / b),
                    Op::Rem => Ok(a % b),
                }
            }
        }
    }
}

/// Parses and evaluates `text` as an integer, naming the text in errors.
pub fn eval_int(text: &str, vars: &ParamPoint) -> Result<i64, String> {
    parse(text)?
        .eval_int(vars)
        .map_err(|e| format!("cannot evaluate `{text}`: {e}"))
}

/// Parses and evaluates `text` as a float, naming the text in errors.
pub fn eval_f64(text: &str, vars: &ParamPoint) -> Result<f64, String> {
    parse(text)?
        .eval_f64(vars)
        .map_err(|e| format!("cannot evaluate `{text}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(pairs: &[(&str, ParamValue)]) -> ParamPoint {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn integer_expressions() {
        let p = point(&[
            ("n", ParamValue::Int(1 << 20)),
            ("m", ParamValue::Int(3)),
            ("k", ParamValue::Int(7)),
        ]);
        let cases = [
            ("n", 1 << 20),
            ("12*n", 12 << 20),
            ("12 * n", 12 << 20),
            ("(n + 255) / 256", 4096),
            ("n*n", 1 << 40),
            ("2*m*n*k", 42 << 20),
            ("-m + 10", 7),
            ("10 - 2 - 3", 5),
            ("2 * (3 + 4) * 5", 70),
            ("k % m", 1),
            ("1_000_000", 1_000_000),
            ("100 / 7", 14),
        ];
        for (text, want) in cases {
            assert_eq!(eval_int(text, &p), Ok(want), "{text}");
        }
    }

    #[test]
    fn float_expressions() {
        let p = point(&[("a", ParamValue::Float(2.5)), ("n", ParamValue::Int(4))]);
        assert_eq!(eval_f64("a * n", &p), Ok(10.0));
        assert_eq!(eval_f64("1.5e3", &p), Ok(1500.0));
        assert_eq!(eval_f64("n / 8", &p), Ok(0.5));
        assert_eq!(eval_f64("-a", &p), Ok(-2.5));
    }

    #[test]
    fn errors_are_explicit() {
        let p = point(&[("n", ParamValue::Int(4)), ("a", ParamValue::Float(0.5))]);
        let cases = [
            ("n +", "expected a number"),
            ("(n", "expected `)`"),
            ("n $ 2", "unexpected character"),
            ("q * 2", "unknown parameter `q` (known: a, n)"),
            ("n / 0", "division by zero"),
            ("a * 2", "is not an integer"),
            ("1.5", "not an integer"),
            ("9223372036854775807 + 1", "integer overflow"),
            ("", "expected a number"),
            ("1.2.3", "invalid number"),
        ];
        for (text, want) in cases {
            let err = eval_int(text, &p).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
        assert!(
            eval_int("x", &ParamPoint::new())
                .unwrap_err()
                .contains("add it to `params`")
        );
    }
}
