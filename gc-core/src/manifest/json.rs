//! JSON read the way Go's `encoding/json` reads it, for [`super::go_decode`] and the lenient
//! reader alike.
//!
//! Whether distribution can decode a manifest starts with whether Go's decoder accepts the
//! text, and serde_json disagrees with it in ways a damaged manifest meets: serde_json stops at
//! 128 levels of nesting (Go: 10,000, `maxNestingDepth` in `encoding/json/scanner.go`), rejects
//! invalid UTF-8 and lone UTF-16 surrogates inside strings (Go replaces each with U+FFFD:
//! `unquoteBytes` in `decode.go`), and refuses numbers beyond `f64` (Go's scanner takes any
//! number the grammar allows; only decoding one into a `float64` fails). So this module scans
//! the text itself, with Go's grammar and limits:
//!
//! - RFC 8259 grammar; whitespace is space, tab, CR, LF; anything after the top-level value
//!   but whitespace is an error;
//! - strings: any byte from 0x20 up, escapes `\" \\ \/ \b \f \n \r \t \uXXXX`; decoded as Go
//!   does (per invalid byte one U+FFFD; a surrogate that does not pair is U+FFFD);
//! - nesting up to 10,000 arrays and objects, scanned with an explicit stack: no recursion, so
//!   no input can overflow the stack;
//! - objects keep every member in document order, duplicates included (Go decodes each in
//!   turn: the last one wins, but a type error in an earlier one is still an error).
//!
//! The tree keeps containers down to [`TREE_DEPTH`] levels; deeper ones are syntax-checked and
//! kept as [`Json::DeepArray`] / [`Json::DeepObject`]: no typed field of any manifest is deeper
//! than six levels, and a shallow tree also drops without deep recursion.

use std::fmt;

/// Go's `maxNestingDepth` (`encoding/json/scanner.go`): deeper input is a syntax error.
pub const MAX_DEPTH: usize = 10_000;

/// How deep the tree keeps containers' contents.
pub const TREE_DEPTH: usize = 48;

/// A JSON value as Go's decoder sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number, as written (`1.5`, `1e400`, `-0`).
    Number(Box<str>),
    /// A string, unescaped, invalid UTF-8 and lone surrogates replaced by U+FFFD.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object's members in document order, duplicates included.
    Object(Vec<(String, Json)>),
    /// An array nested deeper than [`TREE_DEPTH`]: valid, contents not kept.
    DeepArray,
    /// An object nested deeper than [`TREE_DEPTH`]: valid, contents not kept.
    DeepObject,
}

impl Json {
    /// The word Go's `UnmarshalTypeError` uses for this kind of value (`string`, `number`, …).
    pub fn go_kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "bool",
            Json::Number(_) => "number",
            Json::String(_) => "string",
            Json::Array(_) | Json::DeepArray => "array",
            Json::Object(_) | Json::DeepObject => "object",
        }
    }
}

/// A document: its value, and the first number (in document order) that Go cannot decode
/// into a `float64` (`strconv.ParseFloat` overflows), which decoding into `interface{}` meets.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The top-level value.
    pub value: Json,
    /// The first number beyond `f64`'s range, as written.
    pub first_float_overflow: Option<String>,
}

/// Go's `SyntaxError` text: the input is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError(pub String);

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SyntaxError {}

const UNEXPECTED_END: &str = "unexpected end of JSON input";

/// Scan `bytes` as Go's `json.Unmarshal` would (`checkValid`, then decoding).
pub fn parse(bytes: &[u8]) -> Result<Document, SyntaxError> {
    Scanner {
        b: bytes,
        i: 0,
        overflow: None,
    }
    .document()
}

/// A container being read.
enum Frame {
    Array(Vec<Json>),
    Object(Vec<(String, Json)>, String),
    DeepArray,
    DeepObject,
}

impl Frame {
    fn close(self) -> Json {
        match self {
            Frame::Array(v) => Json::Array(v),
            Frame::Object(m, _) => Json::Object(m),
            Frame::DeepArray => Json::DeepArray,
            Frame::DeepObject => Json::DeepObject,
        }
    }

    fn is_array(&self) -> bool {
        matches!(self, Frame::Array(_) | Frame::DeepArray)
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    overflow: Option<String>,
}

/// Go's `quoteChar`: how a byte is shown in a syntax error.
fn quote_char(c: u8) -> String {
    match c {
        b'\'' => r"'\''".to_string(),
        b'"' => "'\"'".to_string(),
        0x20..=0x7e => format!("'{}'", c as char),
        b'\n' => r"'\n'".to_string(),
        b'\r' => r"'\r'".to_string(),
        b'\t' => r"'\t'".to_string(),
        0x00..=0x1f | 0x7f => format!("'\\x{c:02x}'"),
        _ => format!("'{}'", char::from(c)),
    }
}

fn invalid(c: u8, context: &str) -> SyntaxError {
    SyntaxError(format!("invalid character {} {context}", quote_char(c)))
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn eof() -> SyntaxError {
        SyntaxError(UNEXPECTED_END.to_string())
    }

    fn document(mut self) -> Result<Document, SyntaxError> {
        let mut stack: Vec<Frame> = Vec::new();
        'value: loop {
            self.skip_ws();
            let c = self.peek().ok_or_else(Self::eof)?;
            let mut done = match c {
                b'{' | b'[' => {
                    self.i += 1;
                    if stack.len() >= MAX_DEPTH {
                        return Err(invalid(c, "exceeded max depth"));
                    }
                    let keep = stack.len() < TREE_DEPTH;
                    let frame = match (c, keep) {
                        (b'[', true) => Frame::Array(Vec::new()),
                        (b'[', false) => Frame::DeepArray,
                        (_, true) => Frame::Object(Vec::new(), String::new()),
                        (_, false) => Frame::DeepObject,
                    };
                    self.skip_ws();
                    let close = if c == b'[' { b']' } else { b'}' };
                    if self.peek() == Some(close) {
                        self.i += 1;
                        frame.close()
                    } else {
                        let is_array = frame.is_array();
                        stack.push(frame);
                        if !is_array {
                            self.key(&mut stack)?;
                        }
                        continue 'value;
                    }
                }
                b'"' => Json::String(self.string()?),
                b't' => self.literal("true", Json::Bool(true))?,
                b'f' => self.literal("false", Json::Bool(false))?,
                b'n' => self.literal("null", Json::Null)?,
                b'-' | b'0'..=b'9' => self.number()?,
                c => return Err(invalid(c, "looking for beginning of value")),
            };
            // Attach the finished value to its container; close containers that end here.
            loop {
                let Some(top) = stack.last_mut() else {
                    self.skip_ws();
                    if let Some(c) = self.peek() {
                        return Err(invalid(c, "after top-level value"));
                    }
                    return Ok(Document {
                        value: done,
                        first_float_overflow: self.overflow,
                    });
                };
                match top {
                    Frame::Array(v) => v.push(done),
                    Frame::Object(m, key) => m.push((std::mem::take(key), done)),
                    Frame::DeepArray | Frame::DeepObject => {}
                }
                let is_array = top.is_array();
                self.skip_ws();
                let c = self.peek().ok_or_else(Self::eof)?;
                match (is_array, c) {
                    (_, b',') => {
                        self.i += 1;
                        if !is_array {
                            self.key(&mut stack)?;
                        }
                        continue 'value;
                    }
                    (true, b']') | (false, b'}') => {
                        self.i += 1;
                        done = match stack.pop() {
                            Some(frame) => frame.close(),
                            None => return Err(Self::eof()),
                        };
                    }
                    (true, c) => return Err(invalid(c, "after array element")),
                    (false, c) => return Err(invalid(c, "after object key:value pair")),
                }
            }
        }
    }

    /// Read `"key" :` into the object on top of the stack.
    fn key(&mut self, stack: &mut [Frame]) -> Result<(), SyntaxError> {
        self.skip_ws();
        match self.peek() {
            None => return Err(Self::eof()),
            Some(b'"') => {}
            Some(c) => return Err(invalid(c, "looking for beginning of object key string")),
        }
        let key = self.string()?;
        if let Some(Frame::Object(_, pending)) = stack.last_mut() {
            *pending = key;
        }
        self.skip_ws();
        match self.peek() {
            None => Err(Self::eof()),
            Some(b':') => {
                self.i += 1;
                Ok(())
            }
            Some(c) => Err(invalid(c, "after object key")),
        }
    }

    fn literal(&mut self, word: &'static str, value: Json) -> Result<Json, SyntaxError> {
        for (n, expect) in word.bytes().enumerate() {
            match self.peek() {
                None => return Err(Self::eof()),
                Some(c) if c == expect => self.i += 1,
                Some(c) => {
                    return Err(invalid(
                        c,
                        &format!(
                            "in literal {word} (expecting {})",
                            quote_char(word.as_bytes()[n])
                        ),
                    ))
                }
            }
        }
        Ok(value)
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    /// One digit at least, or the error Go's scanner gives.
    fn need_digit(&mut self) -> Result<(), SyntaxError> {
        match self.peek() {
            None => Err(Self::eof()),
            Some(b'0'..=b'9') => {
                self.digits();
                Ok(())
            }
            Some(c) => Err(invalid(c, "in numeric literal")),
        }
    }

    fn number(&mut self) -> Result<Json, SyntaxError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            None => return Err(Self::eof()),
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            Some(c) => return Err(invalid(c, "in numeric literal")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.need_digit()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.need_digit()?;
        }
        // The grammar above admits only ASCII.
        let text = String::from_utf8_lossy(&self.b[start..self.i]).into_owned();
        if self.overflow.is_none() && text.parse::<f64>().is_ok_and(f64::is_infinite) {
            self.overflow = Some(text.clone());
        }
        Ok(Json::Number(text.into_boxed_str()))
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.b.get(at..at + 4)?;
        let mut v = 0u32;
        for &d in digits {
            v = v * 16 + char::from(d).to_digit(16)?;
        }
        Some(v)
    }

    /// A string starting at its opening quote, decoded as Go's `unquoteBytes` does.
    fn string(&mut self) -> Result<String, SyntaxError> {
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        let mut run = self.i;
        loop {
            let c = self.peek().ok_or_else(Self::eof)?;
            match c {
                b'"' => {
                    push_lossy(&mut out, &self.b[run..self.i]);
                    self.i += 1;
                    return String::from_utf8(out).map_err(|_| Self::eof());
                }
                b'\\' => {
                    push_lossy(&mut out, &self.b[run..self.i]);
                    self.i += 1;
                    let e = self.peek().ok_or_else(Self::eof)?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        e => return Err(invalid(e, "in string escape code")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    run = self.i;
                }
                0x00..=0x1f => return Err(invalid(c, "in string literal")),
                _ => self.i += 1,
            }
        }
    }

    /// After `\u`: four hex digits, paired with a following `\uXXXX` when they form a
    /// surrogate pair, U+FFFD for a surrogate that does not pair (Go: `utf16.DecodeRune`).
    fn unicode_escape(&mut self) -> Result<char, SyntaxError> {
        for k in 0..4 {
            match self.b.get(self.i + k) {
                None => return Err(Self::eof()),
                Some(d) if d.is_ascii_hexdigit() => {}
                Some(&d) => return Err(invalid(d, "in \\u hexadecimal character escape")),
            }
        }
        let r = self.hex4(self.i).unwrap_or(0xfffd);
        self.i += 4;
        if !(0xd800..0xe000).contains(&r) {
            return Ok(char::from_u32(r).unwrap_or('\u{fffd}'));
        }
        // A surrogate: Go looks at the next six bytes for `\uXXXX`.
        if self.b.get(self.i) == Some(&b'\\') && self.b.get(self.i + 1) == Some(&b'u') {
            if let Some(r2) = self.hex4(self.i + 2) {
                if (0xd800..0xdc00).contains(&r) && (0xdc00..0xe000).contains(&r2) {
                    self.i += 6;
                    let c = 0x10000 + ((r - 0xd800) << 10) + (r2 - 0xdc00);
                    return Ok(char::from_u32(c).unwrap_or('\u{fffd}'));
                }
            }
        }
        Ok('\u{fffd}')
    }
}

/// Append raw string bytes, each byte of an invalid UTF-8 sequence as U+FFFD (Go's
/// `utf8.DecodeRune` returns width 1 for every invalid byte).
fn push_lossy(out: &mut Vec<u8>, raw: &[u8]) {
    for chunk in raw.utf8_chunks() {
        out.extend_from_slice(chunk.valid().as_bytes());
        for _ in chunk.invalid() {
            out.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &[u8]) -> Json {
        match parse(s) {
            Ok(d) => d.value,
            Err(e) => panic!("{:?}: {e}", String::from_utf8_lossy(s)),
        }
    }

    fn err(s: &[u8]) -> String {
        match parse(s) {
            Ok(d) => panic!("{:?} parsed: {:?}", String::from_utf8_lossy(s), d.value),
            Err(e) => e.0,
        }
    }

    #[test]
    fn grammar_is_go_s() {
        assert_eq!(
            ok(b" {\"a\" : [1, -0, 1.5e+3, true, null, \"x\"]}\r\n").go_kind(),
            "object"
        );
        for bad in [
            &b""[..],
            b"  ",
            b"{",
            b"{\"a\"",
            b"{\"a\":",
            b"[1,",
            b"\"abc",
            b"-",
            b"1.",
            b"1e",
            b"tru",
        ] {
            assert_eq!(err(bad), UNEXPECTED_END, "{bad:?}");
        }
        assert_eq!(err(b"{}x"), "invalid character 'x' after top-level value");
        assert_eq!(err(b"01"), "invalid character '1' after top-level value");
        assert_eq!(
            err(b"[1,]"),
            "invalid character ']' looking for beginning of value"
        );
        assert_eq!(
            err(b"{\"a\":1,}"),
            "invalid character '}' looking for beginning of object key string"
        );
        assert_eq!(err(b"{\"a\" 1}"), "invalid character '1' after object key");
        assert_eq!(err(b"[1 2]"), "invalid character '2' after array element");
        assert_eq!(err(b"1.x"), "invalid character 'x' in numeric literal");
        assert_eq!(
            err(b"\"\\x\""),
            "invalid character 'x' in string escape code"
        );
        assert_eq!(
            err(b"\"\\u12g4\""),
            "invalid character 'g' in \\u hexadecimal character escape"
        );
        assert_eq!(
            err(b"\"a\nb\""),
            "invalid character '\\n' in string literal"
        );
        assert_eq!(
            err(b"nul!"),
            "invalid character '!' in literal null (expecting 'l')"
        );
        assert_eq!(
            err(b"\xef\xbb\xbf{}"),
            "invalid character '\u{ef}' looking for beginning of value"
        );
        assert_eq!(
            err(b"{\"a\":1}\x00"),
            "invalid character '\\x00' after top-level value"
        );
    }

    #[test]
    fn strings_are_decoded_like_go() {
        let s = |raw: &[u8]| match ok(raw) {
            Json::String(s) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(s(b"\"a\\u00e9\\n\\/\""), "a\u{e9}\n/");
        assert_eq!(s(b"\"\\ud83d\\ude00\""), "\u{1f600}");
        assert_eq!(s(b"\"\\ud800\""), "\u{fffd}");
        assert_eq!(s(b"\"\\ud800\\u0041\""), "\u{fffd}A");
        assert_eq!(s(b"\"\\udc00\\ud800\""), "\u{fffd}\u{fffd}");
        assert_eq!(s(b"\"a\xffb\""), "a\u{fffd}b");
        assert_eq!(s(b"\"\xe2\x82a\""), "\u{fffd}\u{fffd}a");
        assert_eq!(s(b"\"\xed\xa0\x80\""), "\u{fffd}\u{fffd}\u{fffd}");
        assert_eq!(s(b"\"\x7f\""), "\u{7f}");
    }

    #[test]
    fn duplicates_are_kept_in_order() {
        assert_eq!(
            ok(br#"{"a":1,"a":"x"}"#),
            Json::Object(vec![
                ("a".into(), Json::Number("1".into())),
                ("a".into(), Json::String("x".into()))
            ])
        );
    }

    #[test]
    fn nesting_up_to_ten_thousand_levels() {
        let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(ok(nest(MAX_DEPTH).as_bytes()).go_kind(), "array");
        assert_eq!(
            err(nest(MAX_DEPTH + 1).as_bytes()),
            "invalid character '[' exceeded max depth"
        );
        let objects = format!("{}1{}", "{\"k\":".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        assert_eq!(ok(objects.as_bytes()).go_kind(), "object");
        // A million unclosed brackets: an error, not a stack overflow.
        assert_eq!(
            err("[".repeat(1_000_000).as_bytes()),
            "invalid character '[' exceeded max depth"
        );
    }

    #[test]
    fn float_overflow_is_remembered_not_an_error() {
        let d = parse(br#"[1e308, 1e-400, 2e308, 1e400]"#).unwrap();
        assert_eq!(d.first_float_overflow.as_deref(), Some("2e308"));
        assert_eq!(
            parse(b"[1.7976931348623157e308]")
                .unwrap()
                .first_float_overflow,
            None
        );
    }
}
