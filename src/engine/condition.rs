//! `when:` conditions: `env == 'production'`, `deploy_ok && status("Smoke test") == 'ok'`.
//!
//! Operands are variable names, quoted strings, numbers, and `status("step name")` (an
//! earlier step's status: ok, warning, critical, unknown, skipped, or "" if it has not
//! run). Operators: `==`, `!=`, `!`/`not`, `&&`/`and`, `||`/`or`, parentheses. A bare
//! operand is true unless it is empty, `false`, `0` or `no`. Variables are resolved when
//! the runbook is loaded, so an unknown one is a load error; step statuses at run time.
//! A condition nests at most [`MAX_NESTING`] levels and has at most [`MAX_TOKENS`] parts,
//! so a hostile one is a located error instead of a stack overflow.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// Parentheses and `!`/`not` inside one another, at most.
pub const MAX_NESTING: usize = 32;
/// Operands, operators and parentheses in one condition, at most (a long `&&` chain
/// nests as deeply as it is long).
pub const MAX_TOKENS: usize = 512;

/// A condition that cannot be parsed; what it says names the part at fault.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Error {
    #[error(
        "the condition has {0} parts, more than the {MAX_TOKENS} allowed; split it over \
         several steps"
    )]
    TooLong(usize),
    #[error("unexpected {token} in condition {condition:?}")]
    Extra { token: String, condition: String },
    #[error("unclosed {quote} in condition {condition:?}")]
    Unclosed { quote: char, condition: String },
    #[error("unexpected {0:?} in condition {1:?}")]
    Character(char, String),
    #[error("the condition nests deeper than {MAX_NESTING} levels of parentheses and `!`")]
    TooDeep,
    #[error("the condition ends where a value was expected")]
    Ends,
    #[error("missing `)` in condition")]
    MissingParen,
    #[error("write status(\"step name\") with the name quoted")]
    StatusName,
    #[error("missing `)` after status(\"…\"")]
    StatusParen,
    #[error("undefined variable `{name}` in condition (quote a literal: '{name}'){hint}")]
    Undefined { name: String, hint: String },
    #[error("unexpected `{0}` in condition")]
    Operator(&'static str),
}

#[derive(Clone, Debug)]
pub struct Condition {
    source: String,
    expr: Expr,
}

#[derive(Clone, Debug)]
enum Expr {
    Literal(String),
    Status(String),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Eq(Box<Expr>, Box<Expr>, bool),
}

impl Condition {
    /// Parse `source`, resolving variables from `vars`.
    pub fn parse(source: &str, vars: &BTreeMap<String, String>) -> Result<Self, Error> {
        let tokens = tokenize(source)?;
        if tokens.len() > MAX_TOKENS {
            return Err(Error::TooLong(tokens.len()));
        }
        let mut parser = Parser {
            tokens,
            at: 0,
            vars,
            depth: 0,
        };
        let expr = parser.or()?;
        if let Some(extra) = parser.tokens.get(parser.at) {
            return Err(Error::Extra {
                token: extra.to_string(),
                condition: source.to_string(),
            });
        }
        Ok(Condition {
            source: source.to_string(),
            expr,
        })
    }

    /// Evaluate with `status` giving an earlier step's status.
    pub fn holds(&self, status: &dyn Fn(&str) -> String) -> bool {
        truthy(&value(&self.expr, status))
    }

    /// The step names the condition reads.
    pub fn steps(&self) -> Vec<String> {
        fn walk(e: &Expr, out: &mut Vec<String>) {
            match e {
                Expr::Status(name) => out.push(name.clone()),
                Expr::Not(a) => walk(a, out),
                Expr::And(a, b) | Expr::Or(a, b) | Expr::Eq(a, b, _) => {
                    walk(a, out);
                    walk(b, out);
                }
                Expr::Literal(_) => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.expr, &mut out);
        out
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}

fn value(e: &Expr, status: &dyn Fn(&str) -> String) -> String {
    let bool_text = |b: bool| if b { "true" } else { "false" }.to_string();
    match e {
        Expr::Literal(s) => s.clone(),
        Expr::Status(name) => status(name),
        Expr::Not(a) => bool_text(!truthy(&value(a, status))),
        Expr::And(a, b) => bool_text(truthy(&value(a, status)) && truthy(&value(b, status))),
        Expr::Or(a, b) => bool_text(truthy(&value(a, status)) || truthy(&value(b, status))),
        Expr::Eq(a, b, equal) => bool_text((value(a, status) == value(b, status)) == *equal),
    }
}

fn truthy(s: &str) -> bool {
    !matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "" | "false" | "0" | "no"
    )
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Op(&'static str),
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Word(w) => write!(f, "`{w}`"),
            Token::Str(s) => write!(f, "{s:?}"),
            Token::Op(o) => write!(f, "`{o}`"),
        }
    }
}

fn tokenize(source: &str) -> Result<Vec<Token>, Error> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = source.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '\'' || c == '"' {
            let end =
                chars[i + 1..]
                    .iter()
                    .position(|&x| x == c)
                    .ok_or_else(|| Error::Unclosed {
                        quote: c,
                        condition: source.to_string(),
                    })?;
            tokens.push(Token::Str(chars[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        if let Some(op) = ["==", "!=", "&&", "||"].into_iter().find(|op| *op == two) {
            tokens.push(Token::Op(op));
            i += 2;
            continue;
        }
        if let Some(op) = ["!", "(", ")"].into_iter().find(|op| op.starts_with(c)) {
            tokens.push(Token::Op(op));
            i += 1;
            continue;
        }
        if c.is_alphanumeric() || c == '_' || c == '.' || c == '-' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || "_.-".contains(chars[i])) {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
            continue;
        }
        return Err(Error::Character(c, source.to_string()));
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    vars: &'a BTreeMap<String, String>,
    /// Parentheses and negations open around the current position.
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn eat(&mut self, op: &str) -> bool {
        let hit = match self.peek() {
            Some(Token::Op(o)) => *o == op,
            Some(Token::Word(w)) => w == op && matches!(op, "and" | "or" | "not"),
            _ => false,
        };
        if hit {
            self.at += 1;
        }
        hit
    }

    /// Go one level deeper, or refuse past [`MAX_NESTING`].
    fn nest(&mut self) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(Error::TooDeep);
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, Error> {
        let mut left = self.and()?;
        while self.eat("||") || self.eat("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, Error> {
        let mut left = self.unary()?;
        while self.eat("&&") || self.eat("and") {
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, Error> {
        if self.eat("!") || self.eat("not") {
            self.nest()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        let left = self.operand()?;
        for (op, equal) in [("==", true), ("!=", false)] {
            if self.eat(op) {
                let right = self.operand()?;
                return Ok(Expr::Eq(Box::new(left), Box::new(right), equal));
            }
        }
        Ok(left)
    }

    fn operand(&mut self) -> Result<Expr, Error> {
        let token = self.tokens.get(self.at).cloned().ok_or(Error::Ends)?;
        self.at += 1;
        match token {
            Token::Op("(") => {
                self.nest()?;
                let inner = self.or()?;
                if !self.eat(")") {
                    return Err(Error::MissingParen);
                }
                self.depth -= 1;
                Ok(inner)
            }
            Token::Str(s) => Ok(Expr::Literal(s)),
            Token::Word(w) if w == "status" => {
                let name = match (self.eat("("), self.tokens.get(self.at).cloned()) {
                    (true, Some(Token::Str(name))) => name,
                    _ => return Err(Error::StatusName),
                };
                self.at += 1;
                if !self.eat(")") {
                    return Err(Error::StatusParen);
                }
                Ok(Expr::Status(name))
            }
            Token::Word(w) if w.parse::<f64>().is_ok() || w == "true" || w == "false" => {
                Ok(Expr::Literal(w))
            }
            Token::Word(w) => match self.vars.get(&w) {
                Some(v) => Ok(Expr::Literal(v.clone())),
                None => {
                    let known: Vec<&str> = self.vars.keys().map(String::as_str).collect();
                    let hint = crate::error::did_you_mean(&w, &known)
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    Err(Error::Undefined { name: w, hint })
                }
            },
            Token::Op(op) => Err(Error::Operator(op)),
        }
    }
}

thread_local! {
    static VARS: std::cell::RefCell<BTreeMap<String, String>> = const { std::cell::RefCell::new(BTreeMap::new()) };
}

/// Run `f` (a deserialization) with conditions resolving these variables.
pub fn with_vars<T>(vars: BTreeMap<String, String>, f: impl FnOnce() -> T) -> T {
    let previous = VARS.with(|v| v.replace(vars));
    let result = f();
    VARS.with(|v| *v.borrow_mut() = previous);
    result
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        VARS.with(|vars| Condition::parse(&source, &vars.borrow()))
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("env", "production"), ("dry", "false")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn holds(source: &str) -> bool {
        let statuses = |name: &str| {
            if name == "API healthy" {
                "ok".into()
            } else {
                String::new()
            }
        };
        Condition::parse(source, &vars()).unwrap().holds(&statuses)
    }

    #[test]
    fn comparisons_logic_and_step_statuses() {
        assert!(holds("env == 'production'"));
        assert!(!holds("env != \"production\""));
        assert!(holds("!dry"));
        assert!(holds(
            "env == 'production' && status(\"API healthy\") == 'ok'"
        ));
        assert!(holds("not (dry or env == 'staging')"));
        assert!(!holds("status('Other') == 'ok'"));
    }

    #[test]
    fn errors_name_the_problem() {
        let err = |s: &str| Condition::parse(s, &vars()).unwrap_err().to_string();
        assert!(err("evn == 'x'").contains("undefined variable `evn`"));
        assert!(err("evn == 'x'").contains("did you mean `env`?"));
        assert!(err("env == 'x").contains("unclosed"));
        assert!(err("env ==").contains("ends where a value was expected"));
        assert!(err("(env").contains("missing `)`"));
        assert_eq!(err("env ~ 1"), "unexpected '~' in condition \"env ~ 1\"");
        assert_eq!(
            err("status(env)"),
            "write status(\"step name\") with the name quoted"
        );
        assert_eq!(err("env )"), "unexpected `)` in condition \"env )\"");
    }

    #[test]
    fn hostile_nesting_and_length_are_errors_not_overflows() {
        let deep = format!("{}env{}", "(".repeat(40), ")".repeat(40));
        let e = Condition::parse(&deep, &vars()).unwrap_err().to_string();
        assert!(e.contains("deeper than 32"), "{e}");
        let nots = format!("{}dry", "! ".repeat(40));
        assert!(
            Condition::parse(&nots, &vars())
                .unwrap_err()
                .to_string()
                .contains("deeper than 32")
        );
        let huge = format!("{}env{}", "(".repeat(100_000), ")".repeat(100_000));
        let e = Condition::parse(&huge, &vars()).unwrap_err().to_string();
        assert!(e.contains("more than the 512 allowed"), "{e}");
        let chain = vec!["dry"; 100_000].join(" && ");
        let e = Condition::parse(&chain, &vars()).unwrap_err().to_string();
        assert!(e.contains("more than the 512 allowed"), "{e}");
        let fine = format!("{}env == 'production'{}", "(".repeat(32), ")".repeat(32));
        assert!(holds(&fine));
    }
}
