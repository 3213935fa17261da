//! Rest.li 2.0 query syntax as LinkedIn's versioned API reads it (`shared/apis/linkedin.md` §2):
//! structures are written literally (`(key:value,...)`, `List(a,b)`), and only the leaves are
//! percent-encoded, so a URN inside `List(...)` must arrive as `urn%3Ali%3A...`. A raw `:` in a
//! list item, or an encoded delimiter (`%28` for `(`), is a syntax error here as it is there.

/// One parsed query value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestliValue {
    /// A leaf, percent-decoded.
    Literal(String),
    /// `List(a,b,...)`.
    List(Vec<RestliValue>),
    /// `(key:value,...)`, in order.
    Object(Vec<(String, RestliValue)>),
}

impl RestliValue {
    /// The value of `key` in an object.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&RestliValue> {
        match self {
            RestliValue::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a literal.
    #[must_use]
    pub fn as_literal(&self) -> Option<&str> {
        match self {
            RestliValue::Literal(text) => Some(text),
            _ => None,
        }
    }

    /// The items of a list.
    #[must_use]
    pub fn as_list(&self) -> Option<&[RestliValue]> {
        match self {
            RestliValue::List(items) => Some(items),
            _ => None,
        }
    }
}

/// Parses one Rest.li 2.0 value as it appears (still encoded) in a query string.
///
/// # Errors
///
/// A message saying what is wrong and where, for the 400 answer.
pub fn parse(raw: &str) -> Result<RestliValue, String> {
    let mut parser = Parser { raw, pos: 0 };
    let value = parser.value()?;
    if parser.pos != raw.len() {
        return Err(parser.unexpected());
    }
    Ok(value)
}

/// The query string split into `(decoded key, raw value)` pairs: values stay encoded because the
/// Rest.li delimiters in them are only recognisable before decoding.
#[must_use]
pub fn raw_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key).unwrap_or_else(|_| key.to_owned()), value.to_owned())
        })
        .collect()
}

/// Percent-decodes a leaf; a `%` not followed by two hex digits is an error.
///
/// # Errors
///
/// The malformed escape.
pub fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
            match byte {
                Some(b) => out.push(b),
                None => return Err(format!("`{text}` has a malformed percent escape")),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{text}` does not decode to UTF-8"))
}

struct Parser<'a> {
    raw: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.raw[self.pos..]
    }

    fn peek(&self) -> Option<u8> {
        self.raw.as_bytes().get(self.pos).copied()
    }

    fn unexpected(&self) -> String {
        match self.peek() {
            Some(b) => format!("unexpected `{}` at position {} of `{}`", char::from(b), self.pos, self.raw),
            None => format!("`{}` ends too early", self.raw),
        }
    }

    fn value(&mut self) -> Result<RestliValue, String> {
        if self.rest().starts_with("List(") {
            self.pos += "List(".len();
            return self.list();
        }
        if self.peek() == Some(b'(') {
            self.pos += 1;
            return self.object();
        }
        self.literal().map(RestliValue::Literal)
    }

    fn list(&mut self) -> Result<RestliValue, String> {
        let mut items = Vec::new();
        if self.peek() == Some(b')') {
            self.pos += 1;
            return Ok(RestliValue::List(items));
        }
        loop {
            items.push(self.value()?);
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b')') => {
                    self.pos += 1;
                    return Ok(RestliValue::List(items));
                }
                Some(b':') => {
                    return Err(format!(
                        "a `:` inside List(...) at position {} of `{}`: URNs in a list must be \
                         percent-encoded (urn%3Ali%3A...)",
                        self.pos, self.raw
                    ));
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    fn object(&mut self) -> Result<RestliValue, String> {
        let mut fields = Vec::new();
        if self.peek() == Some(b')') {
            self.pos += 1;
            return Ok(RestliValue::Object(fields));
        }
        loop {
            let key = self.literal()?;
            if self.peek() != Some(b':') {
                return Err(self.unexpected());
            }
            self.pos += 1;
            let value = self.value()?;
            fields.push((key, value));
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b')') => {
                    self.pos += 1;
                    return Ok(RestliValue::Object(fields));
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    fn literal(&mut self) -> Result<String, String> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if matches!(b, b'(' | b')' | b',' | b':') {
                break;
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.unexpected());
        }
        decode(&self.raw[start..self.pos])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> RestliValue {
        RestliValue::Literal(s.to_owned())
    }

    #[test]
    fn date_ranges_and_encoded_lists_parse() {
        // The canonical strings of shared/apis/linkedin.md §2.
        let range = parse("(start:(year:2024,month:1,day:1),end:(year:2024,month:12,day:31))").unwrap();
        assert_eq!(range.get("start").and_then(|s| s.get("month")), Some(&lit("1")));
        assert_eq!(range.get("end").and_then(|s| s.get("day")), Some(&lit("31")));
        let list =
            parse("List(urn%3Ali%3AsponsoredAccount%3A123456,urn%3Ali%3AsponsoredAccount%3A456789)").unwrap();
        assert_eq!(
            list.as_list().unwrap(),
            [lit("urn:li:sponsoredAccount:123456"), lit("urn:li:sponsoredAccount:456789")]
        );
        let intervals =
            parse("(timeRange:(start:1711929600000,end:1712534400000),timeGranularityType:DAY)").unwrap();
        assert_eq!(intervals.get("timeGranularityType"), Some(&lit("DAY")));
        assert_eq!(parse("List()").unwrap(), RestliValue::List(Vec::new()));
    }

    #[test]
    fn unencoded_urns_and_encoded_delimiters_are_refused() {
        let err = parse("List(urn:li:sponsoredAccount:1)").unwrap_err();
        assert!(err.contains("percent-encoded"), "{err}");
        // An encoded parenthesis is a literal, so the structure is not one.
        assert_eq!(parse("%28start%3A1%29").unwrap(), lit("(start:1)"));
        assert!(parse("(start:(year:2024)").is_err());
        assert!(parse("(start:1,)").is_err());
        assert!(parse("List(a").is_err());
        assert!(parse("a%zz").is_err());
    }

    #[test]
    fn raw_pairs_keep_values_encoded() {
        let pairs = raw_pairs("q=analytics&accounts=List(urn%3Ali%3Ax%3A1)&&flag");
        assert_eq!(
            pairs,
            [
                ("q".to_owned(), "analytics".to_owned()),
                ("accounts".to_owned(), "List(urn%3Ali%3Ax%3A1)".to_owned()),
                ("flag".to_owned(), String::new())
            ]
        );
    }
}
