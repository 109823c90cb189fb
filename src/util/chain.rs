//! An error and its causes as one line of text, for the places that report
//! an error as text instead of returning it (a skipped image, a quarantined
//! shard): each layer's `Display` is its own context only (the convention
//! of the crate's `error` module), so the causes are joined here.

/// `e` and its causes on one line, `context: cause: cause`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// [`chain`] as a method, for tests that check what a message says.
#[cfg(test)]
pub(crate) trait Chained {
    fn chained(&self) -> String;
}

#[cfg(test)]
impl<E: std::error::Error> Chained for E {
    fn chained(&self) -> String {
        chain(self)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn joins_every_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read x.json")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(super::chain(&e), "cannot read x.json: disk on fire");
    }
}
