//! The validation context of stage two: the problems found so far, each located in the
//! scenario file through its span tree. Shared by the validator and the parts it hands
//! fields to (load shapes); it checks nothing itself.

use super::error::{Problem, ScenarioError};
use super::span::{FieldPath, Source};

/// Collects problems, each located through the document's span tree.
pub(crate) struct Ctx<'a> {
    src: &'a Source<'a>,
    problems: Vec<Problem>,
}

impl<'a> Ctx<'a> {
    /// A context for the document `src`, without problems yet.
    pub(crate) fn new(src: &'a Source<'a>) -> Self {
        Ctx {
            src,
            problems: Vec::new(),
        }
    }

    /// Problems recorded so far.
    pub(crate) fn problem_count(&self) -> usize {
        self.problems.len()
    }

    /// Records a problem with the field at `path`.
    pub(crate) fn err(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.problems.push(self.src.problem(path, message));
    }

    /// Ok when nothing was recorded; otherwise every problem, in the order found.
    pub(crate) fn finish(self) -> Result<(), ScenarioError> {
        if self.problems.is_empty() {
            return Ok(());
        }
        Err(ScenarioError::Invalid(self.problems))
    }
}
