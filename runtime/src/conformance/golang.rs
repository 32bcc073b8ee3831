//! stub
use super::Case;
use crate::Runtime;
const SOURCE: &str = "golang";
pub(crate) fn cases<R: Runtime>() -> Vec<Case> {
    let _ = SOURCE;
    Vec::new()
}
