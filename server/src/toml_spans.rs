//! Where things are in a TOML file (scenarios, pool topologies): a field path type
//! (`load[2].ramp.over`), a tree of the document's keys with their byte spans, and the
//! located [`Problem`] every file error is reported as (`file:line: field: message`). A serde
//! error knows a byte offset and gets its field from here; a validation error knows its field
//! and gets its line. It only locates; it never interprets values.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A field path inside a TOML file, printed as `load[2].ramp.over`; keys that are not
/// bare TOML keys are quoted (`slo."post_ack.p99"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    /// The document itself.
    pub fn root() -> Self {
        Self::default()
    }

    /// This path followed by a key.
    pub fn key(&self, k: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }

    /// This path followed by an array index.
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let bare = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if bare {
                        f.write_str(k)?;
                    } else {
                        write!(f, "\"{}\"", k.replace('\\', "\\\\").replace('"', "\\\""))?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A value with its byte span, when toml knows it.
#[derive(Debug)]
pub struct Sp<T> {
    /// Byte range in the document (None for implicit tables such as `behaviour` in
    /// `[[behaviour.ops]]`).
    pub span: Option<Range<usize>>,
    /// The value.
    pub value: T,
}

/// A value of the document with the spans of everything below it.
#[derive(Debug)]
pub enum Node {
    /// A table: each key with its span, and its value.
    Table(Vec<(Sp<String>, Sp<Node>)>),
    /// An array.
    Array(Vec<Sp<Node>>),
    /// Anything else (string, number, boolean, date).
    Leaf,
}

// toml hands out spans through serde_spanned's protocol: a struct with these names. We speak
// it ourselves instead of using `toml::Spanned` because `Spanned` fails outright where toml
// has no span (implicit tables), and we want to fall back to "no span" there.
const SPANNED: &str = "$__serde_spanned_private_Spanned";
const START: &str = "$__serde_spanned_private_start";
const END: &str = "$__serde_spanned_private_end";
const VALUE: &str = "$__serde_spanned_private_value";
const FIELDS: &[&str] = &[START, END, VALUE];

impl<'de> Deserialize<'de> for Sp<String> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(
            SPANNED,
            FIELDS,
            SpVisitor::<String>(std::marker::PhantomData),
        )
    }
}

impl<'de> Deserialize<'de> for Sp<Node> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SPANNED, FIELDS, SpVisitor::<Node>(std::marker::PhantomData))
    }
}

struct SpVisitor<T>(std::marker::PhantomData<T>);

fn unspanned<T>(value: T) -> Sp<T> {
    Sp { span: None, value }
}

impl<'de> Visitor<'de> for SpVisitor<String> {
    type Value = Sp<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(unspanned(v.to_string()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let first: String = map
            .next_key()?
            .ok_or_else(|| de::Error::custom("empty key"))?;
        spanned_rest(first, &mut map)
    }
}

/// Reads the rest of a spanned value whose first key (`START`) has been read.
fn spanned_rest<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
    first: String,
    map: &mut A,
) -> Result<Sp<T>, A::Error> {
    if first != START {
        return Err(de::Error::custom("expected a spanned value"));
    }
    let start: usize = map.next_value()?;
    let _: Option<String> = map.next_key()?;
    let end: usize = map.next_value()?;
    let _: Option<String> = map.next_key()?;
    let value: T = map.next_value()?;
    Ok(Sp {
        span: Some(start..end),
        value,
    })
}

impl<'de> Visitor<'de> for SpVisitor<Node> {
    type Value = Sp<Node>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(unspanned(Node::Leaf))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(unspanned(Node::Leaf))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(unspanned(Node::Leaf))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(unspanned(Node::Leaf))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(unspanned(Node::Leaf))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        NodeVisitor.visit_seq(seq).map(unspanned)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // Either the span protocol, or a table toml has no span for.
        let Some(first) = map.next_key::<Sp<String>>()? else {
            return Ok(unspanned(Node::Table(Vec::new())));
        };
        if first.value == START {
            return spanned_rest(first.value, &mut map);
        }
        let mut entries = vec![(first, map.next_value::<Sp<Node>>()?)];
        while let Some(entry) = map.next_entry::<Sp<String>, Sp<Node>>()? {
            entries.push(entry);
        }
        Ok(unspanned(Node::Table(entries)))
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Sp<Node>>()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<Sp<String>, Sp<Node>>()? {
            entries.push(entry);
        }
        Ok(Node::Table(entries))
    }
}

/// The spans of a whole document. Building it is best effort: a document toml cannot read
/// gives an empty tree, and errors then point at line 1 (the syntax error has its own span).
pub struct SpanTree {
    root: Option<Node>,
}

impl SpanTree {
    /// Reads the spans of `text`.
    pub fn new(text: &str) -> Self {
        Self {
            root: toml::from_str::<Node>(text).ok(),
        }
    }

    /// The deepest field whose key or value covers the byte range `offset` (an error's
    /// span: a value, a key, or a whole table for a missing field). A table's span can end
    /// before its sub-tables (`[population]` before `[[population.rooms]]`), so children are
    /// searched too.
    pub fn path_at(&self, offset: Range<usize>) -> FieldPath {
        let mut path = FieldPath::root();
        let mut node = match &self.root {
            Some(n) => n,
            None => return path,
        };
        loop {
            let next = match node {
                Node::Table(entries) => entries.iter().find_map(|(k, v)| {
                    if contains(&k.span, &offset) {
                        Some((Seg::Key(k.value.clone()), None))
                    } else if contains(&v.span, &offset) || within(&v.value, &offset) {
                        Some((Seg::Key(k.value.clone()), Some(&v.value)))
                    } else {
                        None
                    }
                }),
                Node::Array(items) => items
                    .iter()
                    .enumerate()
                    .find(|(_, v)| contains(&v.span, &offset) || within(&v.value, &offset))
                    .map(|(i, v)| (Seg::Index(i), Some(&v.value))),
                Node::Leaf => None,
            };
            match next {
                Some((seg, child)) => {
                    path.0.push(seg);
                    match child {
                        Some(c) => node = c,
                        None => return path,
                    }
                }
                None => return path,
            }
        }
    }

    /// The span of `path`'s value, or of its nearest ancestor that is in the file (a field
    /// left to its default is reported where its table is).
    pub fn span_of(&self, path: &FieldPath) -> Option<Range<usize>> {
        let mut node = self.root.as_ref()?;
        let mut best = None;
        for seg in &path.0 {
            let child = match (node, seg) {
                (Node::Table(entries), Seg::Key(k)) => entries
                    .iter()
                    .find(|(key, _)| &key.value == k)
                    .map(|(key, v)| (key.span.clone(), v)),
                (Node::Array(items), Seg::Index(i)) => items.get(*i).map(|v| (v.span.clone(), v)),
                _ => None,
            };
            match child {
                Some((key_span, v)) => {
                    // A table's own span can be its whole body; its key's line reads better.
                    let span = match v.value {
                        Node::Leaf => v.span.clone().or(key_span),
                        _ => key_span.or(v.span.clone()),
                    };
                    best = span.or(best);
                    node = &v.value;
                }
                None => break,
            }
        }
        best
    }
}

fn contains(span: &Option<Range<usize>>, r: &Range<usize>) -> bool {
    span.as_ref()
        .is_some_and(|s| s.start <= r.start && r.end <= s.end.max(s.start + 1))
}

/// Whether anything under `node` covers `offset`.
fn within(node: &Node, offset: &Range<usize>) -> bool {
    match node {
        Node::Table(entries) => entries.iter().any(|(k, v)| {
            contains(&k.span, offset) || contains(&v.span, offset) || within(&v.value, offset)
        }),
        Node::Array(items) => items
            .iter()
            .any(|v| contains(&v.span, offset) || within(&v.value, offset)),
        Node::Leaf => false,
    }
}

/// 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// One thing wrong with a TOML file, located so a user can go straight to it; printed as
/// `file:line: field: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// Field path, e.g. `load[2].ramp.over` (`(top level)` for the document).
    pub field: String,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.field,
            self.message
        )
    }
}

/// Why a TOML file of ours (a scenario, a topology) could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read.
    #[error("{}: cannot read {what} file: {source}", file.display())]
    Read {
        /// What the file is (`scenario`, `topology`).
        what: &'static str,
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not TOML, an unknown key, or a value of the wrong type or form.
    #[error("{0}")]
    Syntax(Problem),
    /// Well-formed, but breaking rules (one entry per problem found).
    #[error("{}", list(.0))]
    Invalid(Vec<Problem>),
}

impl FileError {
    /// Every problem, whatever the stage (none for a file that could not be read).
    pub fn problems(&self) -> Vec<&Problem> {
        match self {
            FileError::Read { .. } => Vec::new(),
            FileError::Syntax(p) => vec![p],
            FileError::Invalid(ps) => ps.iter().collect(),
        }
    }
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Read a TOML file of ours, naming it in the error.
pub fn read(what: &'static str, path: &Path) -> Result<String, FileError> {
    std::fs::read_to_string(path).map_err(|source| FileError::Read {
        what,
        file: path.to_path_buf(),
        source,
    })
}

/// A TOML document being read: its file (named in messages), its text and its spans. It
/// turns a field path, or a toml error, into a located [`Problem`].
pub struct Source<'a> {
    file: &'a Path,
    text: &'a str,
    spans: SpanTree,
}

impl<'a> Source<'a> {
    /// The document `text`, read from `file`.
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Self {
            file,
            text,
            spans: SpanTree::new(text),
        }
    }

    /// The file the document was read from.
    pub fn file(&self) -> &'a Path {
        self.file
    }

    /// The spans of the document.
    pub fn spans(&self) -> &SpanTree {
        &self.spans
    }

    /// A problem with the field at `path`, on the line of its value (or of its nearest
    /// ancestor in the file; line 1 when none is).
    pub fn problem(&self, path: &FieldPath, message: impl Into<String>) -> Problem {
        let line = self
            .spans
            .span_of(path)
            .map(|s| line_of(self.text, s.start))
            .unwrap_or(1);
        Problem {
            file: self.file.to_path_buf(),
            line,
            field: path.to_string(),
            message: message.into(),
        }
    }

    /// The problem a toml error (bad syntax, wrong type, unknown key) describes, with the
    /// field its span falls in and toml's own message.
    pub fn syntax_problem(&self, e: &toml::de::Error) -> Problem {
        let span = e.span();
        Problem {
            file: self.file.to_path_buf(),
            line: span
                .as_ref()
                .map(|s| line_of(self.text, s.start))
                .unwrap_or(1),
            field: span
                .map(|s| self.spans.path_at(s))
                .unwrap_or_default()
                .to_string(),
            message: match e.message().trim() {
                // The toml crate says nothing for some characters (a control character
                // in a comment): name what stopped it.
                "" => unexpected_at(self.text, e.span().map_or(0, |s| s.start)),
                m => m.to_string(),
            },
        }
    }
}

/// What the parser stopped at, for a syntax error that came without a message.
fn unexpected_at(text: &str, at: usize) -> String {
    match text.get(at..).and_then(|rest| rest.chars().next()) {
        None => "unexpected end of file".to_string(),
        Some(c) if c.is_control() => format!(
            "unexpected control character U+{:04X} (TOML allows only tab and line ends \
             unescaped)",
            c as u32
        ),
        Some(c) => format!("unexpected character {c:?}"),
    }
}
