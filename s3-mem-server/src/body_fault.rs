//! Damaged answers: the bytes a faulty proxy or a broken connection delivers instead of a
//! whole response body.
//!
//! Pure functions over a body that s3s already serialized, so tests can inject exactly the
//! damage a client must survive: a body cut short (at an element boundary, which XML parsers
//! may accept, or anywhere), and a ListObjectsV2 page whose `KeyCount` or `IsTruncated` is
//! wrong or missing. The HTTP layer ([`crate::http`]) decides how the result is framed.

use crate::control::{CutAt, FaultKind};

/// How many leading bytes of `body` a cut at `at` keeps.
pub(crate) fn cut_len(body: &[u8], at: CutAt) -> usize {
    const END: &[u8] = b"</Contents>";
    let ends = || {
        body.windows(END.len())
            .enumerate()
            .filter(|(_, w)| *w == END)
            .map(|(i, _)| i + END.len())
    };
    let middle = body.len() / 2;
    match at {
        CutAt::Middle => middle,
        CutAt::AfterLastContents => ends().next_back().unwrap_or(middle),
        CutAt::AfterMiddleContents => ends()
            .take_while(|&end| end <= middle)
            .last()
            .or_else(|| ends().next())
            .unwrap_or(middle),
        CutAt::InsideLastKey => {
            let text = String::from_utf8_lossy(body);
            text.rfind("<Key>")
                .map(|start| start + "<Key>".len())
                .and_then(|start| {
                    let len = text[start..].find("</Key>")?;
                    Some(start + text[start..start + len / 2 + 1].len())
                })
                .filter(|&at| at <= body.len())
                .unwrap_or(middle)
        }
    }
}

/// The body `kind` makes of `body`, for the faults that rewrite a body ([`FaultKind::CutBody`],
/// [`FaultKind::WrongKeyCount`], [`FaultKind::DropKeyCount`], [`FaultKind::DropIsTruncated`]);
/// `body` unchanged for any other kind. [`FaultKind::CloseMidBody`] keeps the body (the HTTP
/// layer stops sending it at [`cut_len`]).
pub(crate) fn damaged(body: &[u8], kind: FaultKind) -> Vec<u8> {
    match kind {
        FaultKind::CutBody(at) => body[..cut_len(body, at)].to_vec(),
        FaultKind::WrongKeyCount => replace_element(body, "KeyCount", |count| {
            let n: u64 = count.trim().parse().unwrap_or(0);
            Some((n + 1).to_string())
        }),
        FaultKind::DropKeyCount => replace_element(body, "KeyCount", |_| None),
        FaultKind::DropIsTruncated => replace_element(body, "IsTruncated", |_| None),
        FaultKind::SlowDown
        | FaultKind::InternalError
        | FaultKind::DropConnection
        | FaultKind::CloseMidBody(_) => body.to_vec(),
    }
}

/// `body` with the first `<name>text</name>` element replaced by `<name>new</name>`, or
/// removed when `new` returns `None`. Unchanged when there is no such element.
fn replace_element(body: &[u8], name: &str, new: impl Fn(&str) -> Option<String>) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let Some(start) = text.find(&open) else {
        return body.to_vec();
    };
    let Some(len) = text[start..].find(&close) else {
        return body.to_vec();
    };
    let end = start + len + close.len();
    let inner = &text[start + open.len()..start + len];
    let replacement = new(inner)
        .map(|value| format!("{open}{value}{close}"))
        .unwrap_or_default();
    format!("{}{replacement}{}", &text[..start], &text[end..]).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &[u8] = b"<R><KeyCount>2</KeyCount><IsTruncated>true</IsTruncated>\
        <Contents><Key>a</Key></Contents><Contents><Key>b</Key></Contents>\
        <Contents><Key>c</Key></Contents><Delimiter>/</Delimiter></R>";

    #[test]
    fn cuts_fall_after_whole_elements_or_in_the_middle() {
        let last = cut_len(PAGE, CutAt::AfterLastContents);
        assert!(PAGE[..last].ends_with(b"<Key>c</Key></Contents>"));
        let mid = cut_len(PAGE, CutAt::AfterMiddleContents);
        assert!(mid <= PAGE.len() / 2 && PAGE[..mid].ends_with(b"</Contents>"));
        assert_eq!(cut_len(PAGE, CutAt::Middle), PAGE.len() / 2);
        let inside = cut_len(PAGE, CutAt::InsideLastKey);
        assert!(PAGE[..inside].ends_with(b"<Key>c"), "{inside}");
        let cut = damaged(PAGE, FaultKind::CutBody(CutAt::AfterLastContents));
        assert_eq!(cut.len(), last);
    }

    #[test]
    fn key_count_and_is_truncated_are_rewritten() {
        let wrong = String::from_utf8(damaged(PAGE, FaultKind::WrongKeyCount)).unwrap();
        assert!(
            wrong.starts_with("<R><KeyCount>3</KeyCount><IsTruncated>"),
            "{wrong}"
        );
        let dropped = String::from_utf8(damaged(PAGE, FaultKind::DropKeyCount)).unwrap();
        assert!(dropped.starts_with("<R><IsTruncated>"), "{dropped}");
        let dropped = String::from_utf8(damaged(PAGE, FaultKind::DropIsTruncated)).unwrap();
        assert!(
            dropped.starts_with("<R><KeyCount>2</KeyCount><Contents>"),
            "{dropped}"
        );
        assert_eq!(damaged(b"<R/>", FaultKind::DropKeyCount), b"<R/>".to_vec());
    }
}
