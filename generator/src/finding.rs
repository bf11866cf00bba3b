//! What `validate` reports: one finding per problem, located by field path, shown
//! as a miette diagnostic with the offending source line, `file:line:column` and a hint.

use std::fmt;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

use crate::source::{FieldPath, Place, Source};

/// How bad a finding is: errors stop `render`, warnings are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The plan cannot be rendered.
    Error,
    /// Renderable, but probably not what was meant.
    Warning,
}

/// One problem of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// Where: the field path.
    pub path: FieldPath,
    /// What is wrong, naming the values.
    pub message: String,
    /// How to fix it.
    pub hint: String,
    /// Point at the map key rather than the value (duplicate names, unknown keys).
    pub at_key: bool,
    /// A position the parser reported itself (YAML syntax errors), which no field
    /// path can name: the index of field paths stops where the syntax breaks.
    pub at: Option<(usize, usize)>,
}

impl Finding {
    /// An error at `path`.
    pub fn error(path: FieldPath, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            path,
            message: message.into(),
            hint: hint.into(),
            at_key: false,
            at: None,
        }
    }

    /// A warning at `path`.
    pub fn warning(path: FieldPath, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            path,
            message: message.into(),
            hint: hint.into(),
            at_key: false,
            at: None,
        }
    }

    /// Point at the key of the map entry instead of its value.
    pub fn at_key(mut self) -> Self {
        self.at_key = true;
        self
    }

    /// Point at a 1-based line and column the parser reported.
    pub fn at_position(mut self, line: usize, column: usize) -> Self {
        self.at = Some((line, column));
        self
    }

    /// Where in `source` the finding points: the parser's own position, else the key
    /// or the value at its path (or the nearest ancestor that exists).
    pub fn place(&self, source: &Source) -> Option<Place> {
        if let Some((line, column)) = self.at {
            Some(source.place_at(line, column))
        } else if self.at_key {
            source.key_place(&self.path)
        } else {
            source.place(&self.path)
        }
    }

    /// Attach the source, ready for miette.
    pub fn locate(&self, source: &Source) -> Located {
        let place = self.place(source);
        let location = place.map_or_else(
            || source.name().to_owned(),
            |p| format!("{}:{}:{}", source.name(), p.line, p.column),
        );
        Located {
            severity: self.severity,
            message: format!("{location}: {}: {}", self.path, self.message),
            hint: self.hint.clone(),
            span: place.map(|p| (p.offset, p.len.max(1))),
            label: self.path.to_string(),
            source: NamedSource::new(source.name(), source.text().to_owned()),
        }
    }
}

/// A finding with its source attached: implements [`Diagnostic`].
#[derive(Debug)]
pub struct Located {
    severity: Severity,
    message: String,
    hint: String,
    span: Option<(usize, usize)>,
    label: String,
    source: NamedSource<String>,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Located {}

impl Diagnostic for Located {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        if self.hint.is_empty() {
            None
        } else {
            Some(Box::new(&self.hint))
        }
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.span.map(|_| &self.source as &dyn SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (offset, len) = self.span?;
        Some(Box::new(std::iter::once(LabeledSpan::new(
            Some(self.label.clone()),
            offset,
            len,
        ))))
    }
}

/// How many of `findings` are errors.
pub fn error_count(findings: &[Finding]) -> usize {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count()
}

/// Renders diagnostics as text, without colour unless asked (stable for tests and CI logs).
pub fn render(diagnostic: &dyn Diagnostic, color: bool) -> String {
    let theme = if color {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false);
    let mut out = String::new();
    if handler.render_report(&mut out, diagnostic).is_err() {
        out = format!("{diagnostic}\n");
    }
    out
}
