//! The content type of a page file by its extension; `None` for files that
//! are not part of a page (notes, editor files), which are never served.
//! Shared by `build.rs` (what is embedded) and `assets` (what is served).

pub fn content_type(path: &str) -> Option<&'static str> {
    let extension = path.rsplit_once('.')?.1;
    Some(match extension {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        _ => return None,
    })
}
