//! A lean reader of ListObjectsV2 answers, used instead of the SDK's wherever it can read a
//! page exactly as the SDK would.
//!
//! # Why
//!
//! A warm rescan is bound by reading its listing. The SDK's deserializer goes through every
//! page's XML twice (once to see whether a 200 answer is an S3 `<Error>`, once to decode it),
//! through a generic scoped decoder that builds every field of every object: 43 % of the CPU
//! of a warm 1M-key rescan, against a few percent for one pass of the same tokenizer.
//!
//! # How
//!
//! [`LeanListing`], an interceptor on each ListObjectsV2 request, puts
//! [`LeanListDeserializer`] in place of the operation's response deserializer in that
//! request's config bag (its interceptor layer); it holds the SDK's own, from the operation's
//! own configuration layer. The SDK still signs,
//! sends, times out, retries and classifies errors; only the decoding of a successful page
//! changes. A 2xx answer is read in one pass of xmlparser, the SDK's own tokenizer, into the
//! fields the listing uses: `IsTruncated`, `KeyCount`, `NextContinuationToken`, and each
//! entry's `Key`, `LastModified`, `ETag`, `Size` and `Prefix`, converted by the SDK's own
//! functions. The other fields the SDK would decode are checked the way it checks them and not
//! kept; so are a successful page's request ids, which nothing reads.
//!
//! Whenever the body is anything but a complete, well-formed `ListBucketResult` of the shape
//! S3 sends (an error document, a body cut short, a mismatched or unclosed tag, a CDATA
//! section, a comment inside a value, a character reference or entity beyond the five
//! predefined ones, a restore status, a value the SDK would reject), the answer goes to the
//! SDK's deserializer unchanged, and is treated exactly as before. So the lean reader never
//! decides what the SDK would decide otherwise: it decodes the common case, and declines the
//! rest.

use aws_sdk_s3::operation::list_objects_v2::{ListObjectsV2, ListObjectsV2Output};
use aws_sdk_s3::types::{CommonPrefix, Object};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, Error, Output,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, OrchestratorError};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::client::runtime_plugin::RuntimePlugin;
use aws_smithy_runtime_api::client::ser_de::{DeserializeResponse, SharedResponseDeserializer};
use aws_smithy_types::config_bag::{ConfigBag, FrozenLayer};
use aws_smithy_types::date_time::{DateTime, Format};
use aws_smithy_types::primitive::Parse;
use std::borrow::Cow;
use xmlparser::{ElementEnd, StrSpan, Token, Tokenizer};

/// Puts [`LeanListDeserializer`] in place of a ListObjectsV2 request's own deserializer.
#[derive(Debug, Clone)]
pub(crate) struct LeanListing {
    /// The ListObjectsV2 operation's own configuration, which holds the SDK's deserializer.
    sdk: FrozenLayer,
}

impl LeanListing {
    pub(crate) fn new() -> Option<LeanListing> {
        let sdk = ListObjectsV2::new().config()?;
        sdk.load::<SharedResponseDeserializer>()?;
        Some(LeanListing { sdk })
    }
}

impl Intercept for LeanListing {
    fn name(&self) -> &'static str {
        "gc-s3-lean-listing"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let lean = LeanListDeserializer {
            sdk: self.sdk.clone(),
        };
        cfg.interceptor_state()
            .store_put(SharedResponseDeserializer::new(lean));
        Ok(())
    }
}

/// Decodes a successful page that [`read_page`] reads; hands every other answer to the SDK's
/// deserializer.
#[derive(Debug)]
pub(crate) struct LeanListDeserializer {
    sdk: FrozenLayer,
}

impl LeanListDeserializer {
    fn sdk(&self) -> Option<&SharedResponseDeserializer> {
        self.sdk.load::<SharedResponseDeserializer>()
    }
}

impl DeserializeResponse for LeanListDeserializer {
    fn deserialize_streaming_with_config(
        &self,
        response: &mut HttpResponse,
        cfg: &ConfigBag,
    ) -> Option<Result<Output, OrchestratorError<Error>>> {
        self.sdk()?.deserialize_streaming_with_config(response, cfg)
    }

    fn deserialize_nonstreaming_with_config(
        &self,
        response: &HttpResponse,
        cfg: &ConfigBag,
    ) -> Result<Output, OrchestratorError<Error>> {
        // The SDK parses this header into a field nothing here reads, and fails the request
        // if it is malformed: an answer with it is the SDK's.
        if response.status().is_success() && response.headers().get(REQUEST_CHARGED).is_none() {
            if let Some(page) = response.body().bytes().and_then(read_page) {
                #[cfg(test)]
                LEAN_PAGES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(Output::erase(page));
            }
        }
        match self.sdk() {
            Some(sdk) => sdk.deserialize_nonstreaming_with_config(response, cfg),
            // `LeanListing::new` saw it there: not reached.
            None => Err(OrchestratorError::other(
                "the SDK's ListObjectsV2 deserializer is gone",
            )),
        }
    }
}

/// Pages the lean reader decoded in requests (the tests' proof that it is in the path).
#[cfg(test)]
static LEAN_PAGES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A response header the SDK's deserializer reads.
const REQUEST_CHARGED: &str = "x-amz-request-charged";

/// The page in `body` as the SDK would decode it (the fields the listing uses), or `None` if
/// the body is not one the lean reader reads (see the module documentation).
pub(crate) fn read_page(body: &[u8]) -> Option<ListObjectsV2Output> {
    let text = std::str::from_utf8(body).ok()?;
    let mut reader = Reader {
        tokens: Tokenizer::from(text),
    };
    let root = reader.root()?;
    if root.local != "ListBucketResult" {
        return None;
    }
    let mut page = ListObjectsV2Output::builder();
    let (mut objects, mut prefixes) = (Vec::new(), Vec::new());
    if reader.open()? {
        while let Some(child) = reader.child(root)? {
            match child.local {
                "Contents" => objects.push(reader.object(child)?),
                "CommonPrefixes" => prefixes.push(reader.common_prefix(child)?),
                "IsTruncated" => page = page.is_truncated(parse(&reader.text(child)?)?),
                "KeyCount" => page = page.key_count(parse(&reader.text(child)?)?),
                "MaxKeys" => {
                    parse::<i32>(&reader.text(child)?)?;
                }
                "NextContinuationToken" => {
                    page = page.next_continuation_token(reader.text(child)?);
                }
                "Name" | "Prefix" | "Delimiter" | "EncodingType" | "ContinuationToken"
                | "StartAfter" => {
                    reader.text(child)?;
                }
                _ => reader.skip(child)?,
            }
        }
    }
    reader.end()?;
    if !objects.is_empty() {
        page = page.set_contents(Some(objects));
    }
    if !prefixes.is_empty() {
        page = page.set_common_prefixes(Some(prefixes));
    }
    Some(page.build())
}

/// A Smithy primitive as the SDK parses it.
fn parse<T: Parse>(text: &str) -> Option<T> {
    T::parse_smithy_primitive(text).ok()
}

/// An element's name: prefix (empty if none) and local part. Elements are told apart by their
/// local part, as the SDK does.
#[derive(Debug, Clone, Copy)]
struct Name<'a> {
    prefix: &'a str,
    local: &'a str,
}

impl<'a> Name<'a> {
    fn of(prefix: StrSpan<'a>, local: StrSpan<'a>) -> Self {
        Name {
            prefix: prefix.as_str(),
            local: local.as_str(),
        }
    }
}

impl PartialEq for Name<'_> {
    /// Compared byte by byte in place: names are a few bytes long, and `str`'s `==` calls the
    /// C library's `bcmp`, which cost 6 % of a warm 1M-key rescan's CPU (every element's end
    /// tag is checked against its start tag).
    fn eq(&self, other: &Self) -> bool {
        same_bytes(self.prefix, other.prefix) && same_bytes(self.local, other.local)
    }
}

impl Eq for Name<'_> {}

#[inline]
fn same_bytes(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// The tokens of one body; every method returns `None` where the lean reader declines.
struct Reader<'a> {
    tokens: Tokenizer<'a>,
}

impl<'a> Reader<'a> {
    fn next(&mut self) -> Option<Token<'a>> {
        self.tokens.next()?.ok()
    }

    /// The root element's name, after the prolog.
    fn root(&mut self) -> Option<Name<'a>> {
        loop {
            match self.next()? {
                Token::ElementStart { prefix, local, .. } => return Some(Name::of(prefix, local)),
                Token::Declaration { .. }
                | Token::Comment { .. }
                | Token::ProcessingInstruction { .. } => {}
                Token::Text { text } if text.as_str().trim_ascii().is_empty() => {}
                _ => return None,
            }
        }
    }

    /// After an element's start: its attributes (each name once, no reference in a value),
    /// then whether it has content (`<a>`) or is empty (`<a/>`).
    fn open(&mut self) -> Option<bool> {
        let mut names: Vec<Name<'a>> = Vec::new();
        loop {
            match self.next()? {
                Token::Attribute {
                    prefix,
                    local,
                    value,
                    ..
                } => {
                    let name = Name::of(prefix, local);
                    if value.as_str().contains('&') || names.contains(&name) {
                        return None;
                    }
                    names.push(name);
                }
                Token::ElementEnd {
                    end: ElementEnd::Open,
                    ..
                } => return Some(true),
                Token::ElementEnd {
                    end: ElementEnd::Empty,
                    ..
                } => return Some(false),
                _ => return None,
            }
        }
    }

    /// The next child element of `parent` (whose content is open), or `Some(None)` at its
    /// closing tag. Text, comments and processing instructions between children are passed
    /// over, as the SDK does.
    fn child(&mut self, parent: Name<'a>) -> Option<Option<Name<'a>>> {
        loop {
            match self.next()? {
                Token::ElementStart { prefix, local, .. } => {
                    return Some(Some(Name::of(prefix, local)))
                }
                Token::ElementEnd {
                    end: ElementEnd::Close(prefix, local),
                    ..
                } => return (Name::of(prefix, local) == parent).then_some(None),
                Token::Text { text } => {
                    unescape(text.as_str())?;
                }
                Token::Comment { .. } | Token::ProcessingInstruction { .. } => {}
                _ => return None,
            }
        }
    }

    /// The text of element `name` (just started), up to its closing tag: one text with no
    /// reference but the five predefined entities, or none (`""`, as the SDK reads it).
    fn text(&mut self, name: Name<'a>) -> Option<Cow<'a, str>> {
        if !self.open()? {
            return Some(Cow::Borrowed(""));
        }
        match self.next()? {
            Token::Text { text } => {
                let value = unescape(text.as_str())?;
                self.close(name)?;
                Some(value)
            }
            Token::ElementEnd {
                end: ElementEnd::Close(prefix, local),
                ..
            } if Name::of(prefix, local) == name => Some(Cow::Borrowed("")),
            _ => None,
        }
    }

    /// The closing tag of `name`.
    fn close(&mut self, name: Name<'a>) -> Option<()> {
        match self.next()? {
            Token::ElementEnd {
                end: ElementEnd::Close(prefix, local),
                ..
            } if Name::of(prefix, local) == name => Some(()),
            _ => None,
        }
    }

    /// Pass over element `name` (just started) and all it holds, checking that it is well
    /// formed.
    fn skip(&mut self, name: Name<'a>) -> Option<()> {
        if !self.open()? {
            return Some(());
        }
        let mut open = vec![name];
        while let Some(&parent) = open.last() {
            match self.child(parent)? {
                Some(child) => {
                    if self.open()? {
                        open.push(child);
                    }
                }
                None => {
                    open.pop();
                }
            }
        }
        Some(())
    }

    /// One `Contents` entry.
    fn object(&mut self, name: Name<'a>) -> Option<Object> {
        let mut object = Object::builder();
        if self.open()? {
            while let Some(field) = self.child(name)? {
                match field.local {
                    "Key" => object = object.key(self.text(field)?),
                    "LastModified" => {
                        let text = self.text(field)?;
                        let time = DateTime::from_str(&text, Format::DateTimeWithOffset).ok()?;
                        object = object.last_modified(time);
                    }
                    "ETag" => object = object.e_tag(self.text(field)?),
                    "Size" => object = object.size(parse(&self.text(field)?)?),
                    "ChecksumAlgorithm" | "ChecksumType" | "StorageClass" => {
                        self.text(field)?;
                    }
                    "Owner" => self.texts(field, &["DisplayName", "ID"])?,
                    // Its fields need parsing the lean reader does not do: the SDK's.
                    "RestoreStatus" => return None,
                    _ => self.skip(field)?,
                }
            }
        }
        Some(object.build())
    }

    /// One `CommonPrefixes` entry.
    fn common_prefix(&mut self, name: Name<'a>) -> Option<CommonPrefix> {
        let mut prefix = CommonPrefix::builder();
        if self.open()? {
            while let Some(field) = self.child(name)? {
                match field.local {
                    "Prefix" => prefix = prefix.prefix(self.text(field)?),
                    _ => self.skip(field)?,
                }
            }
        }
        Some(prefix.build())
    }

    /// An element whose children named in `fields` hold text (checked, not kept).
    fn texts(&mut self, name: Name<'a>, fields: &[&str]) -> Option<()> {
        if self.open()? {
            while let Some(field) = self.child(name)? {
                if fields.contains(&field.local) {
                    self.text(field)?;
                } else {
                    self.skip(field)?;
                }
            }
        }
        Some(())
    }

    /// After the root element: nothing but white space, comments and processing instructions.
    fn end(&mut self) -> Option<()> {
        for token in self.tokens.by_ref() {
            match token.ok()? {
                Token::Comment { .. } | Token::ProcessingInstruction { .. } => {}
                Token::Text { text } if text.as_str().trim_ascii().is_empty() => {}
                _ => return None,
            }
        }
        Some(())
    }
}

/// `raw` with the five predefined entities replaced; `None` if it holds any other reference
/// (character references and the rest are left to the SDK's decoder).
fn unescape(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.contains('&') {
        return Some(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let (entity, after) = rest[at + 1..].split_once(';')?;
        out.push(match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => return None,
        });
        rest = after;
    }
    out.push_str(rest);
    Some(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use proptest::prelude::*;

    /// What the SDK's own deserializer makes of a 200 answer with `body`.
    fn sdk_page(body: &str) -> Result<ListObjectsV2Output, String> {
        let layer = ListObjectsV2::new()
            .config()
            .expect("the operation's config layer");
        let sdk = layer
            .load::<SharedResponseDeserializer>()
            .expect("the SDK's deserializer");
        let status = StatusCode::try_from(200u16).expect("200 is a status");
        let response = HttpResponse::new(status, SdkBody::from(body));
        let output = sdk
            .deserialize_nonstreaming_with_config(&response, &ConfigBag::base())
            .map_err(|err| format!("{err:?}"))?;
        output
            .downcast::<ListObjectsV2Output>()
            .map_err(|_| "not a ListObjectsV2Output".to_string())
    }

    /// The fields of a page the listing uses, to compare two decodings.
    type Seen = (
        Option<i32>,
        Option<bool>,
        Option<String>,
        Vec<(
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<DateTime>,
        )>,
        Vec<Option<String>>,
    );

    fn seen(page: &ListObjectsV2Output) -> Seen {
        (
            page.key_count,
            page.is_truncated,
            page.next_continuation_token.clone(),
            page.contents()
                .iter()
                .map(|o| (o.key.clone(), o.e_tag.clone(), o.size, o.last_modified))
                .collect(),
            page.common_prefixes()
                .iter()
                .map(|p| p.prefix.clone())
                .collect(),
        )
    }

    /// Asserts the lean reader's promise for `body`: where it reads a page, the SDK reads the
    /// same one. Returns whether it read it.
    fn check(body: &str) -> Result<bool, TestCaseError> {
        let Some(lean) = read_page(body.as_bytes()) else {
            return Ok(false);
        };
        let sdk = sdk_page(body);
        prop_assert!(
            sdk.is_ok(),
            "lean read a page the SDK rejects: {sdk:?}\n{body}"
        );
        if let Ok(sdk) = sdk {
            prop_assert_eq!(seen(&lean), seen(&sdk), "{}", body);
        }
        Ok(true)
    }

    const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#;

    fn page(inner: &str) -> String {
        format!(
            "{HEAD}<Name>b</Name><Prefix>r/</Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys>\
             <IsTruncated>false</IsTruncated>{inner}</ListBucketResult>"
        )
    }

    fn object(key: &str) -> String {
        format!(
            "<Contents><Key>{key}</Key><LastModified>2026-12-03T11:38:12.000Z</LastModified>\
             <ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>71</Size>\
             <StorageClass>STANDARD</StorageClass></Contents>"
        )
    }

    #[test]
    fn reads_a_plain_page_as_the_sdk_does() {
        let body = page(&object(
            "r/docker/registry/v2/blobs/sha256/ab/x &amp; &lt;y&gt;",
        ));
        assert!(matches!(check(&body), Ok(true)), "{body}");
        let lean = read_page(body.as_bytes()).expect("a plain page");
        let keys: Vec<_> = lean.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(keys, ["r/docker/registry/v2/blobs/sha256/ab/x & <y>"]);
        assert_eq!(lean.contents()[0].size, Some(71));
        assert_eq!(
            lean.contents()[0].e_tag(),
            Some("\"d41d8cd98f00b204e9800998ecf8427e\"")
        );
    }

    #[test]
    fn declines_what_it_leaves_to_the_sdk() {
        let plain = page(&object("k"));
        let declined = [
            (
                "an error document",
                "<Error><Code>InternalError</Code></Error>".to_string(),
            ),
            ("a cut body", plain[..plain.len() - 30].to_string()),
            ("a character reference", page(&object("a&#38;b"))),
            ("a CDATA section", page(&object("<![CDATA[a<b]]>"))),
            ("a comment in a value", page(&object("a<!-- c -->b"))),
            ("an unknown entity", page(&object("a&nbsp;b"))),
            ("a mismatched close", plain.replace("</Key>", "</Kee>")),
            (
                "a bad size",
                plain.replace("<Size>71</Size>", "<Size>7x</Size>"),
            ),
            ("a bad time", plain.replace("2026-12-03T", "2026-13-03T")),
            (
                "a restore status",
                plain.replace(
                    "</Contents>",
                    "<RestoreStatus><IsRestoreInProgress>false</IsRestoreInProgress>\
                     </RestoreStatus></Contents>",
                ),
            ),
            ("text after the root", format!("{plain}<x/>")),
        ];
        for (what, body) in declined {
            assert!(read_page(body.as_bytes()).is_none(), "read {what}: {body}");
        }
    }

    /// One listed key as it may be written in XML: each character plain or escaped.
    fn written_key() -> impl Strategy<Value = (String, String)> {
        let char_of = prop_oneof![
            Just('<'),
            Just('>'),
            Just('&'),
            Just('"'),
            Just('\''),
            Just(' '),
            Just('\n'),
            Just('\t'),
            Just('/'),
            Just('é'),
            Just('日'),
            Just('🦀'),
            proptest::char::range('a', 'z'),
            proptest::char::range('0', '9'),
        ];
        proptest::collection::vec((char_of, any::<bool>()), 0..24).prop_map(|chars| {
            let mut key = String::new();
            let mut xml = String::new();
            for (c, escape) in chars {
                key.push(c);
                match (c, escape) {
                    ('<', _) => xml.push_str("&lt;"),
                    ('&', _) => xml.push_str("&amp;"),
                    ('>', true) => xml.push_str("&gt;"),
                    ('"', true) => xml.push_str("&quot;"),
                    ('\'', true) => xml.push_str("&apos;"),
                    _ => xml.push(c),
                }
            }
            (key, xml)
        })
    }

    /// A listing page: its entries' written keys, then how it is written.
    #[derive(Debug, Clone)]
    struct Written {
        keys: Vec<(String, String)>,
        prefixes: Vec<(String, String)>,
        truncated: bool,
        namespace_prefix: bool,
        owner: bool,
        spacing: bool,
        comments: bool,
        millis: bool,
    }

    fn written() -> impl Strategy<Value = Written> {
        (
            proptest::collection::vec(written_key(), 0..6),
            proptest::collection::vec(written_key(), 0..3),
            any::<[bool; 6]>(),
        )
            .prop_map(|(keys, prefixes, flags)| Written {
                keys,
                prefixes,
                truncated: flags[0],
                namespace_prefix: flags[1],
                owner: flags[2],
                spacing: flags[3],
                comments: flags[4],
                millis: flags[5],
            })
    }

    impl Written {
        fn xml(&self) -> String {
            let ns = if self.namespace_prefix { "s3:" } else { "" };
            let gap = if self.spacing { "\n  " } else { "" };
            let note = if self.comments { "<!-- n -->" } else { "" };
            let el = |name: &str, text: &str| format!("{gap}<{ns}{name}>{text}</{ns}{name}>{note}");
            let mut xml = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
            xml += &format!(
                r#"<{ns}ListBucketResult xmlns{}="http://s3.amazonaws.com/doc/2006-03-01/">"#,
                if self.namespace_prefix { ":s3" } else { "" }
            );
            xml += &el("Name", "bench");
            xml += &el("Prefix", "registry/");
            let count = self.keys.len() + self.prefixes.len();
            xml += &el("KeyCount", &count.to_string());
            xml += &el("MaxKeys", "1000");
            xml += &el("IsTruncated", &self.truncated.to_string());
            if self.truncated {
                xml += &el("NextContinuationToken", "1/&lt;tok&gt;");
            }
            for (n, (_, key)) in self.keys.iter().enumerate() {
                let time = if self.millis {
                    format!("2026-12-03T11:38:{:02}.{:03}Z", n % 60, n * 7 % 1000)
                } else {
                    format!("2026-12-03T11:38:{:02}Z", n % 60)
                };
                let mut fields = el("Key", key)
                    + &el("LastModified", &time)
                    + &el("ETag", &format!("&quot;{n:032x}&quot;"))
                    + &el("Size", &(n * 1000).to_string());
                if self.owner {
                    fields += &el("Owner", &(el("ID", "o") + &el("DisplayName", "me")));
                }
                fields += &el("StorageClass", "STANDARD");
                xml += &el("Contents", &fields);
            }
            for (_, prefix) in &self.prefixes {
                xml += &el("CommonPrefixes", &el("Prefix", prefix));
            }
            xml + &format!("{gap}</{ns}ListBucketResult>\n")
        }
    }

    /// A real listing, on a real S3 server, goes through the lean reader.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_listing_is_read_by_the_lean_reader() {
        use crate::{S3Config, S3Storage, StaticCredentials};
        use futures::StreamExt;
        use gc_core::storage::Storage;
        use std::sync::atomic::Ordering;
        use std::time::{Duration, SystemTime};
        let server = s3_mem_server::S3MemServer::start().expect("start s3-mem-server");
        server.create_bucket("lean-bucket");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let keys = (0..2500).map(|n| {
            (
                format!("r/docker/registry/v2/blobs/{n:04} &<>"),
                vec![b'x'; 3],
                t,
            )
        });
        server.put_objects_direct("lean-bucket", keys);
        let credentials = StaticCredentials {
            access_key: s3_mem_server::ACCESS_KEY.to_string(),
            secret_key: s3_mem_server::SECRET_KEY.to_string(),
        };
        let cfg = S3Config::compatible_endpoint(
            "lean-bucket",
            "r",
            server.endpoint(),
            s3_mem_server::REGION,
            credentials,
        );
        let storage = S3Storage::connect(cfg).await.expect("connect");
        let before = LEAN_PAGES.load(Ordering::Relaxed);
        let mut listed = Vec::new();
        let mut stream = storage.list("docker/registry/v2/");
        while let Some(meta) = stream.next().await {
            listed.push(meta.expect("listed").key);
        }
        listed.sort();
        assert_eq!(listed.len(), 2500);
        assert_eq!(listed[7], "docker/registry/v2/blobs/0007 &<>");
        // Three pages (or four, had the access check's page not been kept): every one lean.
        assert!(LEAN_PAGES.load(Ordering::Relaxed) - before >= 3);
    }

    proptest! {
        /// Every page S3 could write, whole, is read, and read as the SDK reads it.
        #[test]
        fn whole_pages_are_read_as_the_sdk_reads_them(page in written()) {
            let body = page.xml();
            prop_assert!(check(&body)?, "declined a whole page: {}", body);
            let lean = read_page(body.as_bytes()).expect("read above");
            let keys: Vec<_> = lean.contents().iter().map(|o| o.key.clone()).collect();
            let want: Vec<_> = page.keys.iter().map(|(key, _)| Some(key.clone())).collect();
            prop_assert_eq!(keys, want);
        }

        /// A page cut anywhere, or with a byte changed, is read as the SDK reads it, or left
        /// to the SDK.
        #[test]
        fn damaged_pages_are_read_as_the_sdk_reads_them_or_declined(
            page in written(),
            at in any::<proptest::sample::Index>(),
            byte in prop_oneof![
                Just(b'<'), Just(b'>'), Just(b'&'), Just(b'/'), Just(b'"'), Just(b'x')
            ],
            cut in any::<bool>(),
        ) {
            let mut body = page.xml().into_bytes();
            let at = at.index(body.len());
            if cut {
                body.truncate(at);
            } else {
                body[at] = byte;
            }
            if let Ok(body) = String::from_utf8(body) {
                check(&body)?;
            }
        }
    }
}
