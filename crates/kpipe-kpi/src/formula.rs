//! The formula language of KPI definitions: arithmetic over metric names.
//!
//! ```text
//! formula  = sum
//! sum      = product { ("+" | "-") product }
//! product  = unary { ("*" | "/") unary }
//! unary    = "-" unary | primary
//! primary  = number | metric [ "[" condition { "," condition } "]" ]
//!          | "coalesce" "(" sum { "," sum } ")" | "start" "(" metric ")" | "(" sum ")"
//! condition = key "=" string { "|" string }
//! ```
//!
//! `×`, `÷` and `−` are accepted for `*`, `/` and `-`, so formulas can be copied from docs/kpis.md.
//! Strings take double or single quotes. Positions in errors are 1-based character columns.

use std::fmt;

use kpipe_core::Decimal;

/// A formula that does not parse, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct FormulaError {
    /// 1-based character position of the problem.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl FormulaError {
    pub(crate) fn new(column: usize, message: impl Into<String>) -> FormulaError {
        FormulaError { column, message: message.into() }
    }
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

/// One `key = "a" | "b"` of a metric's filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Condition {
    pub key: String,
    pub values: Vec<String>,
    pub column: usize,
}

/// A metric named in a formula.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetricRef {
    pub name: String,
    pub filter: Vec<Condition>,
    pub column: usize,
}

/// A parsed formula.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    Number(Decimal),
    Metric(MetricRef),
    /// `start(m)`: a snapshot metric's value at the start of the period.
    Start(MetricRef),
    /// `coalesce(a, b, ...)`: per entity and day, the first alternative the entity reports.
    Coalesce {
        alternatives: Vec<Expr>,
        column: usize,
    },
    Neg(Box<Expr>),
    Binary {
        op: Op,
        left: Box<Expr>,
        right: Box<Expr>,
        column: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(Decimal),
    Name(String),
    Text(String),
    Op(Op),
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Comma,
    Equals,
    Pipe,
    End,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Number(n) => write!(f, "number {n}"),
            Token::Name(n) => write!(f, "`{n}`"),
            Token::Text(t) => write!(f, "string {t:?}"),
            Token::Op(Op::Add) => f.write_str("`+`"),
            Token::Op(Op::Sub) => f.write_str("`-`"),
            Token::Op(Op::Mul) => f.write_str("`*`"),
            Token::Op(Op::Div) => f.write_str("`/`"),
            Token::Open => f.write_str("`(`"),
            Token::Close => f.write_str("`)`"),
            Token::OpenBracket => f.write_str("`[`"),
            Token::CloseBracket => f.write_str("`]`"),
            Token::Comma => f.write_str("`,`"),
            Token::Equals => f.write_str("`=`"),
            Token::Pipe => f.write_str("`|`"),
            Token::End => f.write_str("the end of the formula"),
        }
    }
}

fn lex(text: &str) -> Result<Vec<(Token, usize)>, FormulaError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let single = match c {
            '+' => Some(Token::Op(Op::Add)),
            '-' | '−' => Some(Token::Op(Op::Sub)),
            '*' | '×' => Some(Token::Op(Op::Mul)),
            '/' | '÷' => Some(Token::Op(Op::Div)),
            '(' => Some(Token::Open),
            ')' => Some(Token::Close),
            '[' => Some(Token::OpenBracket),
            ']' => Some(Token::CloseBracket),
            ',' => Some(Token::Comma),
            '=' => Some(Token::Equals),
            '|' => Some(Token::Pipe),
            _ => None,
        };
        if let Some(t) = single {
            out.push((t, column));
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let literal: String = chars[start..i].iter().collect();
            let n = literal.parse::<Decimal>().map_err(|e| FormulaError::new(column, e.to_string()))?;
            out.push((Token::Number(n), column));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            out.push((Token::Name(chars[start..i].iter().collect()), column));
        } else if c == '"' || c == '\'' {
            let start = i + 1;
            let end = chars[start..]
                .iter()
                .position(|x| *x == c)
                .ok_or_else(|| FormulaError::new(column, "a string without its closing quote"))?;
            out.push((Token::Text(chars[start..start + end].iter().collect()), column));
            i = start + end + 1;
        } else {
            return Err(FormulaError::new(column, format!("unexpected character `{c}`")));
        }
    }
    out.push((Token::End, chars.len() + 1));
    Ok(out)
}

/// Parses a formula; names are not checked here.
pub(crate) fn parse(text: &str) -> Result<Expr, FormulaError> {
    let tokens = lex(text)?;
    let mut p = Parser { tokens, at: 0 };
    if matches!(p.peek(), Token::End) {
        return Err(FormulaError::new(1, "the formula is empty"));
    }
    let expr = p.sum()?;
    match p.peek() {
        Token::End => Ok(expr),
        t => Err(FormulaError::new(p.column(), format!("unexpected {t}; expected an operator"))),
    }
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        self.tokens.get(self.at).map_or(&Token::End, |(t, _)| t)
    }

    fn column(&self) -> usize {
        self.tokens.get(self.at).or(self.tokens.last()).map_or(1, |(_, c)| *c)
    }

    fn next(&mut self) -> (Token, usize) {
        let t = self.tokens.get(self.at).cloned().unwrap_or((Token::End, 1));
        self.at += 1;
        t
    }

    fn expect(&mut self, want: &Token, what: &str) -> Result<(), FormulaError> {
        if self.peek() == want {
            self.at += 1;
            Ok(())
        } else {
            Err(FormulaError::new(self.column(), format!("expected {what}, found {}", self.peek())))
        }
    }

    fn sum(&mut self) -> Result<Expr, FormulaError> {
        let mut left = self.product()?;
        while let Token::Op(op @ (Op::Add | Op::Sub)) = *self.peek() {
            let column = self.column();
            self.at += 1;
            let right = self.product()?;
            left = Expr::Binary { op, left: Box::new(left), right: Box::new(right), column };
        }
        Ok(left)
    }

    fn product(&mut self) -> Result<Expr, FormulaError> {
        let mut left = self.unary()?;
        while let Token::Op(op @ (Op::Mul | Op::Div)) = *self.peek() {
            let column = self.column();
            self.at += 1;
            let right = self.unary()?;
            left = Expr::Binary { op, left: Box::new(left), right: Box::new(right), column };
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, FormulaError> {
        if *self.peek() == Token::Op(Op::Sub) {
            self.at += 1;
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, FormulaError> {
        let (token, column) = self.next();
        match token {
            Token::Number(n) => Ok(Expr::Number(n)),
            Token::Open => {
                let inner = self.sum()?;
                self.expect(&Token::Close, "`)`")?;
                Ok(inner)
            }
            Token::Name(name) if *self.peek() == Token::Open => self.call(&name, column),
            Token::Name(name) => Ok(Expr::Metric(self.metric_rest(name, column)?)),
            t => {
                Err(FormulaError::new(column, format!("unexpected {t}; expected a metric, a number or `(`")))
            }
        }
    }

    fn call(&mut self, name: &str, column: usize) -> Result<Expr, FormulaError> {
        self.at += 1; // `(`
        match name {
            "coalesce" => {
                let mut alternatives = vec![self.sum()?];
                while *self.peek() == Token::Comma {
                    self.at += 1;
                    alternatives.push(self.sum()?);
                }
                self.expect(&Token::Close, "`,` or `)`")?;
                if alternatives.len() < 2 {
                    return Err(FormulaError::new(column, "coalesce() takes two or more alternatives"));
                }
                Ok(Expr::Coalesce { alternatives, column })
            }
            "start" => {
                let (token, at) = self.next();
                let Token::Name(metric) = token else {
                    return Err(FormulaError::new(at, format!("start() takes a metric name, found {token}")));
                };
                let m = self.metric_rest(metric, at)?;
                self.expect(&Token::Close, "`)`")?;
                Ok(Expr::Start(m))
            }
            _ => Err(FormulaError::new(column, format!("unknown function `{name}`; known: coalesce, start"))),
        }
    }

    fn metric_rest(&mut self, name: String, column: usize) -> Result<MetricRef, FormulaError> {
        let mut filter = Vec::new();
        if *self.peek() == Token::OpenBracket {
            self.at += 1;
            loop {
                let (token, at) = self.next();
                let Token::Name(key) = token else {
                    return Err(FormulaError::new(at, format!("expected a filter key, found {token}")));
                };
                self.expect(&Token::Equals, "`=`")?;
                let mut values = Vec::new();
                loop {
                    let (token, at) = self.next();
                    let Token::Text(v) = token else {
                        return Err(FormulaError::new(at, format!("expected a quoted value, found {token}")));
                    };
                    values.push(v);
                    if *self.peek() != Token::Pipe {
                        break;
                    }
                    self.at += 1;
                }
                filter.push(Condition { key, values, column: at });
                match self.next() {
                    (Token::Comma, _) => continue,
                    (Token::CloseBracket, _) => break,
                    (t, at) => return Err(FormulaError::new(at, format!("expected `,` or `]`, found {t}"))),
                }
            }
        }
        Ok(MetricRef { name, filter, column })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text).map(|e| format!("parsed: {e:?}")).unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn precedence_and_associativity() {
        let e = parse("spend / impressions * 1000").unwrap();
        let Expr::Binary { op: Op::Mul, left, .. } = e else { panic!("{e:?}") };
        assert!(matches!(*left, Expr::Binary { op: Op::Div, .. }));
        let e = parse("(revenue − spend) ÷ spend").unwrap();
        assert!(matches!(e, Expr::Binary { op: Op::Div, .. }));
        assert!(matches!(parse("-clicks").unwrap(), Expr::Neg(_)));
    }

    #[test]
    fn filters_functions_and_extra_names() {
        let e =
            parse("sessions[channel = \"Organic Social\" | 'Paid Social', platform='x'] / sessions").unwrap();
        let Expr::Binary { left, .. } = e else { panic!() };
        let Expr::Metric(m) = *left else { panic!() };
        assert_eq!(m.filter.len(), 2);
        assert_eq!(m.filter[0].values, ["Organic Social", "Paid Social"]);
        assert!(matches!(parse("follower_gains / start(followers)").unwrap(), Expr::Binary { .. }));
        assert!(matches!(parse("coalesce(engagements, likes + clicks)").unwrap(), Expr::Coalesce { .. }));
        assert!(
            matches!(parse("facebook.action.foo").unwrap(), Expr::Metric(MetricRef { ref name, .. }) if name == "facebook.action.foo")
        );
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(
            err("clicks / "),
            "column 10: unexpected the end of the formula; expected a metric, a number or `(`"
        );
        assert_eq!(err("clicks impressions"), "column 8: unexpected `impressions`; expected an operator");
        assert_eq!(err("(clicks"), "column 8: expected `)`, found the end of the formula");
        assert_eq!(err("clicks $ 2"), "column 8: unexpected character `$`");
        assert_eq!(err("sqrt(clicks)"), "column 1: unknown function `sqrt`; known: coalesce, start");
        assert_eq!(err("coalesce(a)"), "column 1: coalesce() takes two or more alternatives");
        assert_eq!(err("clicks[channel = x]"), "column 18: expected a quoted value, found `x`");
        assert_eq!(err("a['x"), "column 3: a string without its closing quote");
        assert_eq!(err("a['x']"), "column 3: expected a filter key, found string \"x\"");
        assert_eq!(err(""), "column 1: the formula is empty");
        assert_eq!(err("1.2.3"), "column 1: `1.2.3` is not a decimal number");
    }
}
