//! Embeds `schemas/` and `mappings/` in the binary, so `kiban` runs anywhere on the shipped
//! defaults (a job can still name its own mapping files).
use std::io::Write;
use std::path::Path;

fn collect(dir: &Path, root: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, root, out);
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("toml" | "tsv"))
            && let Ok(rel) = p.strip_prefix(root)
        {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

fn main() {
    let root = std::env::var("CARGO_MANIFEST_DIR").map(std::path::PathBuf::from).unwrap_or_default();
    let mut files = Vec::new();
    for d in ["schemas", "mappings"] {
        println!("cargo:rerun-if-changed={d}");
        collect(&root.join(d), &root, &mut files);
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("embedded.rs");
    let mut f = match std::fs::File::create(&out) {
        Ok(f) => f,
        Err(e) => panic!("cannot write {}: {e}", out.display()),
    };
    let mut s = String::from("pub static FILES: &[(&str, &str)] = &[\n");
    for rel in files {
        s.push_str(&format!("    ({rel:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/{rel}\"))),\n"));
    }
    s.push_str("];\n");
    let _ = f.write_all(s.as_bytes());
}
