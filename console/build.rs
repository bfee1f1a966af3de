//! Embeds every file under `web/` into the binary: the console needs no
//! files beside it at run time (`assets_dir` overrides for development).
//! Generates `$OUT_DIR/assets.rs`, a table of (path, content type, bytes).

use std::path::{Path, PathBuf};

#[path = "src/content_type.rs"]
mod content_type;
use content_type::content_type;

fn main() {
    let root =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("web");
    // A folder: cargo rescans everything under it for changes.
    println!("cargo:rerun-if-changed={}", root.display());
    println!("cargo:rerun-if-changed=src/content_type.rs");
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    let mut table = String::from("pub static EMBEDDED: &[(&str, &str, &[u8])] = &[\n");
    for file in &files {
        let relative = file
            .strip_prefix(&root)
            .expect("under web/")
            .to_string_lossy()
            .replace('\\', "/");
        let Some(kind) = content_type(&relative) else {
            continue;
        };
        table.push_str(&format!(
            "    ({relative:?}, {kind:?}, include_bytes!({:?})),\n",
            file.display().to_string()
        ));
    }
    table.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it")).join("assets.rs");
    std::fs::write(out, table).expect("writing assets.rs");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}
