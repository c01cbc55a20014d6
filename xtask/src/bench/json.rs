//! Just enough JSON for the bench: reading criterion's estimates, iperf3's report and
//! flowmeter's log lines, and writing `results.json` (xtask has no serde).

use std::fmt::Write as _;

use anyhow::{Result, bail};

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Value>),
    /// Members in their order, so that written files read in a stable order.
    Obj(Vec<(String, Value)>),
}

impl Value {
    /// `self[key]`, for an object that has `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Obj(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value at a path of keys, e.g. `["end", "sum_received", "bytes"]`.
    pub fn at(&self, path: &[&str]) -> Option<&Value> {
        path.iter().try_fold(self, |v, key| v.get(key))
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as JSON, objects and arrays of objects one member per line.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        let pad = |d: usize| "  ".repeat(d);
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Num(n) if n.is_finite() => write!(out, "{n}").expect("writing to a String"),
            Value::Num(_) => out.push_str("null"),
            Value::Str(s) => write_string(out, s),
            Value::Arr(items) if items.is_empty() => out.push_str("[]"),
            Value::Arr(items) => {
                let nested = items
                    .iter()
                    .any(|v| matches!(v, Value::Obj(_) | Value::Arr(_)));
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    out.push_str(if i == 0 { "" } else { "," });
                    if nested {
                        write!(out, "\n{}", pad(depth + 1)).expect("writing to a String");
                    } else if i > 0 {
                        out.push(' ');
                    }
                    item.write(out, depth + 1);
                }
                if nested {
                    write!(out, "\n{}", pad(depth)).expect("writing to a String");
                }
                out.push(']');
            }
            Value::Obj(members) if members.is_empty() => out.push_str("{}"),
            Value::Obj(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    out.push_str(if i == 0 { "\n" } else { ",\n" });
                    out.push_str(&pad(depth + 1));
                    write_string(out, key);
                    out.push_str(": ");
                    value.write(out, depth + 1);
                }
                write!(out, "\n{}}}", pad(depth)).expect("writing to a String");
            }
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Num(n)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => write!(out, "\\u{:04x}", u32::from(c)).expect("String"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Parses one JSON document (surrounding whitespace allowed).
pub fn parse(text: &str) -> Result<Value> {
    let mut parser = Parser {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let value = parser.value()?;
    parser.skip_space();
    if parser.pos != parser.bytes.len() {
        bail!("JSON: trailing characters at byte {}", parser.pos);
    }
    Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self
            .bytes
            .get(self.pos)
            .is_some_and(u8::is_ascii_whitespace)
        {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8) -> Result<()> {
        if self.peek() != Some(byte) {
            bail!("JSON: expected `{}` at byte {}", byte as char, self.pos);
        }
        self.pos += 1;
        Ok(())
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value> {
        if !self.bytes[self.pos..].starts_with(word.as_bytes()) {
            bail!("JSON: unexpected token at byte {}", self.pos);
        }
        self.pos += word.len();
        Ok(value)
    }

    fn value(&mut self) -> Result<Value> {
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => Ok(Value::Str(self.string()?)),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(_) => self.number(),
            None => bail!("JSON: unexpected end"),
        }
    }

    fn object(&mut self) -> Result<Value> {
        self.expect(b'{')?;
        let mut members = Vec::new();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Obj(members));
        }
        loop {
            self.skip_space();
            let key = self.string()?;
            self.expect(b':')?;
            members.push((key, self.value()?));
            match self.peek() {
                Some(b',') => self.pos += 1,
                _ => break,
            }
        }
        self.expect(b'}')?;
        Ok(Value::Obj(members))
    }

    fn array(&mut self) -> Result<Value> {
        self.expect(b'[')?;
        let mut items = Vec::new();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Arr(items));
        }
        loop {
            items.push(self.value()?);
            match self.peek() {
                Some(b',') => self.pos += 1,
                _ => break,
            }
        }
        self.expect(b']')?;
        Ok(Value::Arr(items))
    }

    fn string(&mut self) -> Result<String> {
        self.expect(b'"')?;
        let mut bytes = Vec::new();
        loop {
            let Some(&b) = self.bytes.get(self.pos) else {
                bail!("JSON: unterminated string");
            };
            self.pos += 1;
            match b {
                b'"' => return Ok(String::from_utf8(bytes)?),
                b'\\' => {
                    let esc = self.bytes.get(self.pos).copied().unwrap_or(0);
                    self.pos += 1;
                    let c = match esc {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => self.unicode_escape()?,
                        other => other as char, // \" \\ \/
                    };
                    bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                b => bytes.push(b),
            }
        }
    }

    /// The four hex digits after `\u` (a surrogate pair's halves become U+FFFD).
    fn unicode_escape(&mut self) -> Result<char> {
        let hex = self.bytes.get(self.pos..self.pos + 4).unwrap_or_default();
        self.pos += 4;
        let code = u32::from_str_radix(std::str::from_utf8(hex)?, 16)?;
        Ok(char::from_u32(code).unwrap_or('\u{fffd}'))
    }

    fn number(&mut self) -> Result<Value> {
        let start = self.pos;
        while self
            .bytes
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_digit() || b"+-.eE".contains(b))
        {
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.bytes[start..self.pos])?;
        match text.parse() {
            Ok(n) => Ok(Value::Num(n)),
            Err(_) => bail!("JSON: bad number {text:?} at byte {start}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Value, parse};

    #[test]
    fn parses_nested_documents() {
        let v =
            parse(r#" {"a": {"b": [1, 2.5e3, -3]}, "s": "x\"\u00e9\n", "t": true, "n": null} "#)
                .unwrap();
        let b = v.at(&["a", "b"]).unwrap();
        assert_eq!(
            b,
            &Value::Arr(vec![1.0.into(), 2500.0.into(), (-3.0).into()])
        );
        assert_eq!(v.get("s").and_then(Value::as_str), Some("x\"é\n"));
        assert_eq!(v.get("t"), Some(&Value::Bool(true)));
        assert_eq!(v.get("n"), Some(&Value::Null));
        assert!(parse("{\"a\":1} x").is_err());
        assert!(parse("[1,").is_err());
    }

    #[test]
    fn written_json_reads_back() {
        let v = Value::Obj(vec![
            ("name".into(), "a \"b\"\n".into()),
            ("runs".into(), 3.0.into()),
            ("list".into(), Value::Arr(vec![1.5.into(), Value::Null])),
            ("nested".into(), Value::Arr(vec![Value::Obj(vec![])])),
        ]);
        assert_eq!(parse(&v.pretty()).unwrap(), v);
    }
}
