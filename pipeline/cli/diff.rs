//! `kiban diff`: the diff stage on its own (SPEC §11), between any two versions of a store.

use crate::diff::{ChangeCounts, change_schema, diff_snapshots};
use crate::store::Store;
use std::path::{Path, PathBuf};

pub struct DiffArgs {
    pub store: PathBuf,
    pub insurer: Option<String>,
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub set: Option<String>,
    pub out: Option<PathBuf>,
}

fn only_insurer(store: &Path) -> Result<String, String> {
    let dir = store.join("_manifests");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.len() == 6 && n.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    match names.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!("{} holds no versions", store.display())),
        _ => Err(format!("{} holds several insurers ({}): give --insurer", store.display(), names.join(", "))),
    }
}

pub fn run(args: DiffArgs) -> i32 {
    match diff(&args) {
        Ok(()) => 0,
        Err((code, msg)) => {
            eprintln!("error: {msg}");
            code
        }
    }
}

fn diff(args: &DiffArgs) -> Result<(), (i32, String)> {
    let catalog = crate::job::catalog::Catalog::embedded().map_err(|e| (2, e.to_string()))?;
    if !args.store.join("_manifests").is_dir() {
        return Err((2, format!("{} is not a kiban store (no _manifests)", args.store.display())));
    }
    let store = Store::open(&args.store).map_err(|e| (1, e.to_string()))?;
    let insurer = match &args.insurer {
        Some(i) => i.clone(),
        None => only_insurer(&args.store).map_err(|e| (2, e))?,
    };
    let versions = store.versions(&insurer).map_err(|e| (1, e.to_string()))?;
    let to = match args.to.or(versions.last().copied()) {
        Some(v) => v,
        None => return Err((2, format!("insurer {insurer} has no versions in {}", args.store.display()))),
    };
    let new = store.manifest(&insurer, to).map_err(|e| (2, e.to_string()))?;
    let from = args.from.or(new.parent_version);
    let old = match from {
        Some(v) => Some(store.manifest(&insurer, v).map_err(|e| (2, e.to_string()))?),
        None => None,
    };
    if let Some(s) = &args.set
        && !new.record_sets.contains_key(s)
    {
        return Err((2, format!("version {to} has no record set `{s}`")));
    }
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).map_err(|e| (1, format!("{}: {e}", dir.display())))?;
    }
    println!("changes of insurer {insurer} from {} to version {to}", from.map_or("nothing".into(), |v| format!("version {v}")));
    println!("{:<26} {:>10} {:>10} {:>10} {:>12}", "record set", "inserts", "updates", "deletes", "unchanged");
    for (name, entry) in &new.record_sets {
        if args.set.as_ref().is_some_and(|s| s != name) {
            continue;
        }
        let Some(set) = catalog.schemas.get(name) else { continue };
        let old_entry = old.as_ref().and_then(|m| m.record_sets.get(name));
        let files = |e: &crate::store::SetEntry| -> Vec<PathBuf> { e.files.iter().map(|f| store.root().join(&f.path)).collect() };
        let counts = if old_entry.is_some_and(|o| o.version == entry.version) {
            ChangeCounts { unchanged: entry.rows, ..ChangeCounts::default() }
        } else {
            let old_files = old_entry.map(files).unwrap_or_default();
            let mut writer = match &args.out {
                Some(dir) => {
                    let path = dir.join(format!("{name}.parquet"));
                    let f = std::fs::File::create(&path).map_err(|e| (1, format!("{}: {e}", path.display())))?;
                    let props = parquet::file::properties::WriterProperties::builder()
                        .set_compression(parquet::basic::Compression::ZSTD(parquet::basic::ZstdLevel::default()))
                        .build();
                    Some(parquet::arrow::ArrowWriter::try_new(f, change_schema(set), Some(props)).map_err(|e| (1, e.to_string()))?)
                }
                None => None,
            };
            let counts = diff_snapshots(set, &old_files, &files(entry), &mut |b| match writer.as_mut() {
                Some(w) => w.write(&b).map_err(|e| Box::new(e) as _),
                None => Ok(()),
            })
            .map_err(|e| (1, e.to_string()))?;
            if let Some(w) = writer {
                w.close().map_err(|e| (1, e.to_string()))?;
            }
            counts
        };
        println!("{:<26} {:>10} {:>10} {:>10} {:>12}", name, counts.inserts, counts.updates, counts.deletes, counts.unchanged);
    }
    Ok(())
}
