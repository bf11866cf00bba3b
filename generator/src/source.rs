//! The plan's source text and where each field sits in it, so that every finding
//! can point at `file:line:column` and underline the offending value.
//!
//! serde tells us *what* is wrong; the YAML event stream, walked once here, tells us
//! *where* a field path such as `clusters[1].podCidrs[0]` is.

use std::collections::BTreeMap;
use std::fmt;

use serde_saphyr::granit_parser::{Event, Parser};

/// A field path in JavaScript-like notation: `services[0].traffic.failover["cn-hangzhou"][1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldPath(String);

impl FieldPath {
    /// The document root.
    pub fn root() -> Self {
        Self::default()
    }

    /// A struct field or map key. Identifier-like keys read `.key`, others `["key"]`,
    /// so that the same key always prints the same way whoever builds the path.
    pub fn key(&self, key: &str) -> Self {
        let plain = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if plain {
            if self.0.is_empty() {
                Self(key.to_owned())
            } else {
                Self(format!("{}.{key}", self.0))
            }
        } else {
            Self(format!("{}[{key:?}]", self.0))
        }
    }

    /// A list element.
    pub fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    /// A path from its text form (paths printed by this type or the policy crate).
    pub fn from_text(text: &str) -> Self {
        Self(text.to_owned())
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("(document)")
        } else {
            f.write_str(&self.0)
        }
    }
}

/// A place in the source: byte range plus 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place {
    /// Byte offset of the start.
    pub offset: usize,
    /// Length in bytes (0 for containers: only their start is marked).
    pub len: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// Where the value and the key of one field are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    value: Place,
    key: Option<Place>,
}

/// A loaded plan file: its name, text and the location of every field.
#[derive(Debug, Clone)]
pub struct Source {
    name: String,
    text: String,
    places: BTreeMap<FieldPath, Entry>,
}

enum Frame {
    Map {
        path: FieldPath,
        key: Option<(String, Place)>,
    },
    Seq {
        path: FieldPath,
        next: usize,
    },
}

impl Source {
    /// Indexes `text`. YAML syntax errors are not reported here (serde reports them
    /// with their location); the index simply stops where the syntax breaks.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let name = name.into();
        let text = text.into();
        let places = index(&text);
        Self { name, text, places }
    }

    /// File name as given on the command line.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Where the value at `path` is, falling back to the nearest ancestor that exists
    /// (a missing optional field is reported at its parent).
    pub fn place(&self, path: &FieldPath) -> Option<Place> {
        self.entry_or_ancestor(path).map(|e| e.value)
    }

    /// Where the key of the map entry at `path` is (for "duplicate key"-like findings).
    pub fn key_place(&self, path: &FieldPath) -> Option<Place> {
        self.places
            .get(path)
            .and_then(|e| e.key)
            .or_else(|| self.place(path))
    }

    fn entry_or_ancestor(&self, path: &FieldPath) -> Option<Entry> {
        let mut text = path.as_str();
        loop {
            if let Some(entry) = self.places.get(&FieldPath(text.to_owned())) {
                return Some(*entry);
            }
            let cut = text.rfind(['.', '['])?;
            text = text.get(..cut)?;
        }
    }

    /// The deepest field whose value contains byte `offset` (to name the field of a
    /// serde error, which only knows its position).
    pub fn path_at(&self, offset: usize) -> Option<FieldPath> {
        self.places
            .iter()
            .filter(|(_, e)| {
                e.value.offset <= offset && offset <= e.value.offset + e.value.len.max(1)
            })
            .max_by_key(|(_, e)| (e.value.offset, e.value.len == 0))
            .map(|(p, _)| p.clone())
            .or_else(|| {
                // Keys: an unknown field is reported at its key.
                self.places
                    .iter()
                    .filter_map(|(p, e)| e.key.map(|k| (p, k)))
                    .find(|(_, k)| k.offset <= offset && offset < k.offset + k.len.max(1))
                    .map(|(p, _)| p.clone())
            })
    }

    /// The place of a 1-based line and column (one character long).
    pub fn place_at(&self, line: usize, column: usize) -> Place {
        let offset = self.offset_of(line, column);
        let len = self
            .text
            .get(offset..)
            .and_then(|rest| rest.chars().next())
            .map_or(0, char::len_utf8);
        Place {
            offset,
            len,
            line,
            column,
        }
    }

    /// Byte offset of a 1-based line and column.
    pub fn offset_of(&self, line: usize, column: usize) -> usize {
        let mut offset = 0;
        for (i, l) in self.text.split_inclusive('\n').enumerate() {
            if i + 1 == line {
                let col_bytes: usize = l
                    .chars()
                    .take(column.saturating_sub(1))
                    .map(char::len_utf8)
                    .sum();
                return offset + col_bytes;
            }
            offset += l.len();
        }
        self.text.len()
    }
}

fn place_of(span: &serde_saphyr::granit_parser::Span) -> Place {
    let start = span
        .start
        .byte_offset()
        .unwrap_or_else(|| span.start.index());
    let end = span.end.byte_offset().unwrap_or_else(|| span.end.index());
    Place {
        offset: start,
        len: end.saturating_sub(start),
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

/// Walks the event stream once, recording the place of every node by field path.
fn index(text: &str) -> BTreeMap<FieldPath, Entry> {
    let mut places = BTreeMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else { break };
        let here = place_of(&span);
        // Path of a node starting now, and the key place if it is a map value.
        let node_path = |stack: &mut Vec<Frame>,
                         is_scalar_key: Option<&str>|
         -> Option<(FieldPath, Option<Place>)> {
            match stack.last_mut() {
                None => Some((FieldPath::root(), None)),
                Some(Frame::Seq { path, next }) => {
                    let p = path.index(*next);
                    *next += 1;
                    Some((p, None))
                }
                Some(Frame::Map { path, key }) => match key.take() {
                    Some((k, kplace)) => Some((path.key(&k), Some(kplace))),
                    None => {
                        // This node is a key.
                        *key = Some((is_scalar_key.unwrap_or("").to_owned(), here));
                        None
                    }
                },
            }
        };
        // A mapping or sequence starting now: record where, return its path.
        let open_collection =
            |stack: &mut Vec<Frame>, places: &mut BTreeMap<FieldPath, Entry>| match node_path(
                stack, None,
            ) {
                Some((path, key)) => {
                    let value = Place { len: 0, ..here };
                    places.insert(path.clone(), Entry { value, key });
                    path
                }
                None => FieldPath(String::from("(complex key)")),
            };
        match event {
            Event::Scalar(value, ..) => {
                if let Some((path, key)) = node_path(&mut stack, Some(&value)) {
                    places.insert(path, Entry { value: here, key });
                }
            }
            Event::Alias(_) => {
                if let Some((path, key)) = node_path(&mut stack, Some("")) {
                    places.insert(path, Entry { value: here, key });
                }
            }
            Event::MappingStart(..) => {
                let path = open_collection(&mut stack, &mut places);
                stack.push(Frame::Map { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = open_collection(&mut stack, &mut places);
                stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            _ => {}
        }
    }
    places
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_find_their_lines() {
        let text = "a:\n  b: [1, 2]\n  c:\n    - x: 1\n      \"cn-x\": y\n";
        let source = Source::new("t.yaml", text);
        let b1 = source
            .place(&FieldPath::root().key("a").key("b").index(1))
            .unwrap();
        assert_eq!((b1.line, b1.column), (2, 10));
        let cx = FieldPath::root().key("a").key("c").index(0).key("cn-x");
        assert_eq!(cx.as_str(), "a.c[0][\"cn-x\"]");
        let p = source.place(&cx).unwrap();
        assert_eq!((p.line, p.column), (5, 15));
        // Missing field falls back to its parent.
        let missing = source
            .place(&FieldPath::root().key("a").key("zzz"))
            .unwrap();
        assert_eq!(missing.line, 2);
        assert_eq!(source.path_at(p.offset).unwrap(), cx);
    }

    #[test]
    fn json_is_indexed_too() {
        let source = Source::new("t.json", "{\"a\": {\"b\": [\"x\", \"y\"]}}");
        let p = source
            .place(&FieldPath::root().key("a").key("b").index(1))
            .unwrap();
        assert_eq!((p.line, p.column), (1, 19));
    }
}
