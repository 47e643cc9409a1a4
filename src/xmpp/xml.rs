//! XMPP's XML stream (RFC 6120 §4), read with quick-xml: one root element that stays open
//! for the whole session, whose children — stanzas and nonzas — are what the session
//! exchanges. [`StreamReader`] hands over the root's start tag once and then each child as a
//! small tree ([`Element`]) when its end tag arrives; [`StreamReader::restart`] reads the
//! new stream a server opens after sign-in. Text is unescaped (entity and character
//! references resolved); elements are matched by local name, namespaces by `xmlns`.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use tokio::io::AsyncBufRead;

/// Largest stanza read, in bytes (a longer one is an error, not an allocation).
pub const MAX_STANZA: usize = 1 << 20;

/// Why the stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    /// Not well-formed XML, or a read error of the socket underneath.
    #[error("XML stream: {0}")]
    Parse(#[from] quick_xml::Error),
    /// Something other than a stream header opened the stream.
    #[error("expected <stream:stream>, got <{0}>")]
    NotAStream(String),
    /// Text in an encoding that does not decode.
    #[error("XML stream: {0}")]
    Encoding(#[from] quick_xml::encoding::EncodingError),
    /// An entity other than XML's five.
    #[error("XML stream: unknown entity &{0};")]
    Entity(String),
    /// A stanza longer than [`MAX_STANZA`].
    #[error("a stanza longer than {MAX_STANZA} bytes")]
    TooLong,
}

/// An element and what is inside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Local name (`message`, `presence`, `x`…).
    pub name: String,
    /// Attributes as written (`xmlns`, `to`, `xml:lang`…), values unescaped.
    pub attrs: Vec<(String, String)>,
    /// Child elements, in order.
    pub children: Vec<Element>,
    /// The text directly inside it, unescaped.
    pub text: String,
}

impl Element {
    /// The value of attribute `key`.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The namespace it declares (`xmlns`).
    pub fn ns(&self) -> Option<&str> {
        self.attr("xmlns")
    }

    /// The first child called `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The first child called `name` in namespace `ns`.
    pub fn child_ns(&self, name: &str, ns: &str) -> Option<&Element> {
        self.children
            .iter()
            .find(|c| c.name == name && c.ns() == Some(ns))
    }

    /// Whether this is `name` in namespace `ns`.
    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns() == Some(ns)
    }

    fn open(start: &BytesStart<'_>) -> Result<Element, quick_xml::Error> {
        let mut attrs = Vec::new();
        for a in start.attributes() {
            let a = a.map_err(quick_xml::Error::from)?;
            let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
            let value = a
                .normalized_value(quick_xml::XmlVersion::Explicit1_0)?
                .into_owned();
            attrs.push((key, value));
        }
        Ok(Element {
            name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
            attrs,
            ..Default::default()
        })
    }
}

/// What the stream gave.
#[derive(Debug)]
pub enum Item {
    /// The stream header (its attributes: `id`, `from`, `version`).
    Header(Element),
    /// A child of the stream root: a stanza or a nonza.
    Stanza(Element),
    /// The stream ended (`</stream:stream>`, or the socket closed).
    Closed,
}

/// Reads one XML stream from `R`.
pub struct StreamReader<R> {
    /// Always present but while [`StreamReader::restart`] swaps it.
    reader: Option<quick_xml::Reader<R>>,
    buf: Vec<u8>,
    /// Elements open below the root, outermost first.
    open: Vec<Element>,
    /// The root's start tag has been read.
    in_stream: bool,
    /// Where in the stream the stanza being read began.
    stanza_start: u64,
}

impl<R: AsyncBufRead + Unpin> StreamReader<R> {
    /// A reader of the stream `r` carries.
    pub fn new(r: R) -> StreamReader<R> {
        StreamReader {
            reader: Some(quick_xml::Reader::from_reader(r)),
            buf: Vec::new(),
            open: Vec::new(),
            in_stream: false,
            stanza_start: 0,
        }
    }

    /// Read the next stream on the same connection (after SASL success the server opens a
    /// new stream, with a new XML declaration), with a parser of its own.
    pub fn restart(&mut self) {
        if let Some(old) = self.reader.take() {
            self.reader = Some(quick_xml::Reader::from_reader(old.into_inner()));
        }
        self.open.clear();
        self.in_stream = false;
    }

    /// The next header, stanza or end of stream.
    pub async fn next(&mut self) -> Result<Item, XmlError> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(Item::Closed);
        };
        loop {
            self.buf.clear();
            let before = reader.buffer_position();
            let event = reader.read_event_into_async(&mut self.buf).await?;
            if self.open.is_empty() {
                self.stanza_start = before;
            } else if reader.buffer_position() - self.stanza_start > MAX_STANZA as u64 {
                return Err(XmlError::TooLong);
            }
            match event {
                Event::Start(start) if !self.in_stream => {
                    let root = Element::open(&start)?;
                    if root.name != "stream" {
                        return Err(XmlError::NotAStream(root.name));
                    }
                    self.in_stream = true;
                    return Ok(Item::Header(root));
                }
                Event::Start(start) => self.open.push(Element::open(&start)?),
                Event::Empty(start) => {
                    let element = Element::open(&start)?;
                    if !self.in_stream {
                        return Err(XmlError::NotAStream(element.name));
                    }
                    match self.open.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None => return Ok(Item::Stanza(element)),
                    }
                }
                Event::End(_) => match self.open.pop() {
                    // The root's end: the server closed the stream.
                    None => return Ok(Item::Closed),
                    Some(element) => match self.open.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None => return Ok(Item::Stanza(element)),
                    },
                },
                Event::Text(text) => {
                    if let Some(e) = self.open.last_mut() {
                        e.text
                            .push_str(&text.xml_content(quick_xml::XmlVersion::Explicit1_0)?);
                    }
                }
                Event::CData(data) => {
                    if let Some(e) = self.open.last_mut() {
                        e.text.push_str(&data.decode()?);
                    }
                }
                Event::GeneralRef(r) => {
                    if let Some(e) = self.open.last_mut() {
                        if let Some(c) = r.resolve_char_ref()? {
                            e.text.push(c);
                        } else {
                            let name = r.decode()?;
                            match resolve_predefined_entity(&name) {
                                Some(s) => e.text.push_str(s),
                                None => return Err(XmlError::Entity(name.into_owned())),
                            }
                        }
                    }
                }
                Event::Eof => return Ok(Item::Closed),
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            }
        }
    }
}

/// `text` with `&`, `<`, `>`, `'` and `"` escaped, for text and attribute values.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn items(text: &str) -> Vec<Item> {
        let mut r = StreamReader::new(text.as_bytes());
        let mut out = Vec::new();
        loop {
            let item = r.next().await.expect("well-formed");
            let done = matches!(item, Item::Closed);
            out.push(item);
            if done {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn a_stream_gives_its_header_then_each_stanza_whole() {
        let got = items(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s1' version='1.0'>\
             <stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>\
             <r xmlns='urn:xmpp:sm:3'/>\
             <message type='groupchat' from='r@c/alice'><body>a &lt;b&gt; &amp; &#233;t&#xE9;</body><delay xmlns='urn:xmpp:delay' stamp='x'/></message>\
             </stream:stream>",
        )
        .await;
        let Item::Header(h) = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!((h.name.as_str(), h.attr("id")), ("stream", Some("s1")));
        let Item::Stanza(f) = &got[1] else {
            panic!("{got:?}")
        };
        let mechs: Vec<&str> = f.children[0]
            .children
            .iter()
            .map(|m| m.text.as_str())
            .collect();
        assert_eq!(
            (f.name.as_str(), mechs),
            ("features", vec!["SCRAM-SHA-1", "PLAIN"])
        );
        let Item::Stanza(r) = &got[2] else {
            panic!("{got:?}")
        };
        assert!(r.is("r", "urn:xmpp:sm:3"));
        let Item::Stanza(m) = &got[3] else {
            panic!("{got:?}")
        };
        assert_eq!(
            m.child("body").map(|b| b.text.as_str()),
            Some("a <b> & été")
        );
        assert!(m.child_ns("delay", "urn:xmpp:delay").is_some());
        assert!(matches!(got[4], Item::Closed));
    }

    #[tokio::test]
    async fn what_is_not_a_stream_or_not_xml_is_an_error() {
        let mut r = StreamReader::new("<html><body/></html>".as_bytes());
        assert!(matches!(r.next().await, Err(XmlError::NotAStream(n)) if n == "html"));
        let mut r = StreamReader::new("<stream:stream><message><body>x</oops>".as_bytes());
        assert!(matches!(r.next().await, Ok(Item::Header(_))));
        assert!(r.next().await.is_err());
        let mut r =
            StreamReader::new("<stream:stream><message><body>&bogus;</body></message>".as_bytes());
        r.next().await.expect("header");
        assert!(r.next().await.is_err());
    }

    #[tokio::test]
    async fn a_stanza_past_the_limit_is_refused() {
        let big = format!(
            "<stream:stream><message><body>{}</body></message>",
            "x".repeat(MAX_STANZA + 10)
        );
        let mut r = StreamReader::new(big.as_bytes());
        r.next().await.expect("header");
        assert!(matches!(r.next().await, Err(XmlError::TooLong)));
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(escape("a<b>&'\""), "a&lt;b&gt;&amp;&apos;&quot;");
    }
}
