//! Auditors' SQL over the store (`kiban query`): every table is registered from the store
//! directory alone — its manifests say which Parquet files make each version.
//!
//! ```text
//!  <store>/_manifests/<insurer>/<v>.json ─► the files of every version
//!      ├─► <set>            current version of each insurer (latest manifest)
//!      ├─► <set>_versions   every version, with a `version` column
//!      ├─► <set>_changes    each version's change rows (`_changes`, SPEC §8), with `version`
//!      ├─► quarantine, warnings          every load, with insurer_no, version, load_id
//!      └─► loads, load_files, load_record_sets   the manifests themselves
//!  catalog ─► rules, rule_hits (view), code_tables
//! ```
//!
//! Tables of sets no version holds yet are registered empty, with their schema, so a query is
//! valid on a fresh store too. The validation functions (`code_valid`, `age_on`, check digits)
//! are available to queries.

pub mod output;

use crate::job::catalog::Catalog;
use crate::map::quarantine::{quarantine_schema, warning_schema};
use crate::schema::ROW_HASH;
use crate::store::{Manifest, Store, StoreError};
use crate::validate::engine::relaxed;
use arrow::array::{ArrayRef, Date32Builder, Int64Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::DataFusionError;
use datafusion::datasource::MemTable;
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionConfig, SessionContext, lit};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{path}: not a kiban store (no _manifests directory)")]
    NotAStore { path: PathBuf },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Catalog(#[from] crate::job::catalog::CatalogError),
    #[error("{0}")]
    Output(String),
}

/// Every manifest of the store, by insurer, oldest first.
pub fn manifests(store: &Store) -> Result<BTreeMap<String, Vec<Manifest>>, QueryError> {
    let dir = store.root().join("_manifests");
    if !dir.is_dir() {
        return Err(QueryError::NotAStore { path: store.root().to_path_buf() });
    }
    let mut out = BTreeMap::new();
    let rd = std::fs::read_dir(&dir).map_err(|source| QueryError::Io { path: dir.clone(), source })?;
    let mut insurers: Vec<String> =
        rd.flatten().filter(|e| e.path().is_dir()).map(|e| e.file_name().to_string_lossy().to_string()).collect();
    insurers.sort();
    for insurer in insurers {
        let mut ms = Vec::new();
        for v in store.versions(&insurer)? {
            ms.push(store.manifest(&insurer, v)?);
        }
        out.insert(insurer, ms);
    }
    Ok(out)
}

fn paths(store: &Store, files: &[crate::store::StoredFile]) -> Vec<String> {
    files.iter().map(|f| store.root().join(&f.path).to_string_lossy().to_string()).collect()
}

async fn read_files(ctx: &SessionContext, files: Vec<String>, schema: &SchemaRef) -> Result<DataFrame, QueryError> {
    let opts = ParquetReadOptions::default().schema(schema.as_ref());
    Ok(ctx.read_parquet(files, opts).await?)
}

/// A version's snapshot files as a frame of `schema`, `row_hash` as hex text whichever store
/// format wrote them (`store::row_hash`): auditors compare it with `_changes` and the platform.
async fn snapshot_frame(
    ctx: &SessionContext,
    store: &Store,
    files: &[crate::store::StoredFile],
    schema: &SchemaRef,
) -> Result<DataFrame, QueryError> {
    use crate::store::row_hash;
    let paths = paths(store, files);
    let keeps_bytes = match paths.first() {
        Some(p) => row_hash::file_keeps_bytes(Path::new(p))?,
        None => false,
    };
    if !keeps_bytes {
        return read_files(ctx, paths, schema).await;
    }
    let stored: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| if f.name() == ROW_HASH { f.as_ref().clone().with_data_type(row_hash::stored_type()) } else { f.as_ref().clone() })
        .collect();
    let df = read_files(ctx, paths, &Arc::new(Schema::new(stored))).await?;
    let columns: Vec<datafusion::prelude::Expr> = schema
        .fields()
        .iter()
        .map(|f| {
            let c = datafusion::prelude::ident(f.name());
            if f.name() == ROW_HASH { datafusion::functions::expr_fn::encode(c, lit("hex")).alias(ROW_HASH) } else { c }
        })
        .collect();
    Ok(df.select(columns)?)
}

fn union_all(frames: Vec<DataFrame>) -> Result<Option<DataFrame>, QueryError> {
    let mut it = frames.into_iter();
    let Some(mut df) = it.next() else { return Ok(None) };
    for other in it {
        df = df.union(other)?;
    }
    Ok(Some(df))
}

fn register_empty(ctx: &SessionContext, name: &str, schema: SchemaRef) -> Result<(), QueryError> {
    ctx.register_table(name, Arc::new(MemTable::try_new(schema, vec![vec![]])?))?;
    Ok(())
}

fn with_extra(schema: &Schema, extra: &[(&str, DataType)]) -> SchemaRef {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    fields.extend(extra.iter().map(|(n, t)| Field::new(*n, t.clone(), true)));
    Arc::new(Schema::new(fields))
}

/// A session with every table of the store registered (see the module doc).
pub async fn session(store_root: &Path) -> Result<SessionContext, QueryError> {
    let catalog = Catalog::embedded()?;
    let store = Store::open(store_root)?;
    let all = manifests(&store)?;
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_information_schema(true));
    for f in crate::validate::functions::all(&catalog.codes, crate::validate::functions::today_in_japan()) {
        ctx.register_udf(f);
    }
    // Record sets: current and every version.
    for (name, schema) in &catalog.schemas.sets {
        let file_schema = relaxed(&schema.arrow);
        let change_schema = crate::diff::change_schema(schema);
        let mut current = Vec::new();
        let mut versions = Vec::new();
        let mut changes = Vec::new();
        for ms in all.values() {
            for (i, m) in ms.iter().enumerate() {
                let Some(entry) = m.record_sets.get(name) else { continue };
                let part = store.changes_dir(name, &m.insurer_no, m.version).join("part-0.parquet");
                if entry.version == m.version && part.exists() {
                    let df = read_files(&ctx, vec![part.to_string_lossy().to_string()], &change_schema).await?;
                    changes.push(df.with_column("version", lit(m.version as i64))?);
                }
                if entry.files.is_empty() {
                    continue;
                }
                let df = snapshot_frame(&ctx, &store, &entry.files, &file_schema).await?;
                if i + 1 == ms.len() {
                    current.push(df.clone());
                }
                versions.push(df.with_column("version", lit(m.version as i64))?);
            }
        }
        match union_all(current)? {
            Some(df) => ctx.register_table(name.as_str(), df.into_view())?,
            None => {
                register_empty(&ctx, name, file_schema.clone())?;
                None
            }
        };
        let cname = format!("{name}_changes");
        match union_all(changes)? {
            Some(df) => ctx.register_table(cname.as_str(), df.into_view())?,
            None => {
                register_empty(&ctx, &cname, with_extra(&change_schema, &[("version", DataType::Int64)]))?;
                None
            }
        };
        let vname = format!("{name}_versions");
        match union_all(versions)? {
            Some(df) => ctx.register_table(vname.as_str(), df.into_view())?,
            None => {
                register_empty(&ctx, &vname, with_extra(&file_schema, &[("version", DataType::Int64)]))?;
                None
            }
        };
    }
    // Quarantine and warnings of every load.
    for (table, schema, pick) in [
        ("quarantine", quarantine_schema(), (|m: &Manifest| m.quarantine.clone()) as fn(&Manifest) -> Vec<crate::store::StoredFile>),
        ("warnings", warning_schema(), |m: &Manifest| m.warnings.clone()),
    ] {
        let file_schema = relaxed(&schema);
        let mut frames = Vec::new();
        for ms in all.values() {
            for m in ms {
                let files = pick(m);
                if files.is_empty() {
                    continue;
                }
                let df = read_files(&ctx, paths(&store, &files), &file_schema).await?;
                frames.push(
                    df.with_column("insurer_no", lit(m.insurer_no.clone()))?
                        .with_column("version", lit(m.version as i64))?
                        .with_column("load_id", lit(m.load_id.clone()))?,
                );
            }
        }
        match union_all(frames)? {
            Some(df) => ctx.register_table(table, df.into_view())?,
            None => {
                let extra = [("insurer_no", DataType::Utf8), ("version", DataType::Int64), ("load_id", DataType::Utf8)];
                register_empty(&ctx, table, with_extra(&file_schema, &extra))?;
                None
            }
        };
    }
    register_manifest_tables(&ctx, &all)?;
    register_catalog_tables(&ctx, &catalog)?;
    // One row per (row, rule): error rules from the quarantine, warning rules from the warnings.
    ctx.sql(
        "CREATE VIEW rule_hits AS \
         SELECT q.insurer_no, q.version, q.load_id, q.record_set, r.rule_id, 'error' AS severity, q.source_file, q.source_record \
         FROM (SELECT insurer_no, version, load_id, record_set, source_file, source_record, \
                      unnest(string_to_array(rule_ids, ',')) AS rule_id FROM quarantine WHERE rule_ids IS NOT NULL) q \
         JOIN (SELECT rule_id FROM rules) r ON r.rule_id = q.rule_id \
         UNION ALL \
         SELECT insurer_no, version, load_id, record_set, rule_id, 'warning' AS severity, source_file, source_record \
         FROM warnings WHERE rule_id IS NOT NULL",
    )
    .await?;
    Ok(ctx)
}

struct Columns {
    names: Vec<&'static str>,
    cols: Vec<Col>,
}

enum Col {
    Text(StringBuilder),
    Int(Int64Builder),
    Date(Date32Builder),
}

impl Columns {
    fn new(spec: &[(&'static str, char)]) -> Columns {
        Columns {
            names: spec.iter().map(|s| s.0).collect(),
            cols: spec
                .iter()
                .map(|s| match s.1 {
                    'i' => Col::Int(Int64Builder::new()),
                    'd' => Col::Date(Date32Builder::new()),
                    _ => Col::Text(StringBuilder::new()),
                })
                .collect(),
        }
    }
    fn text(&mut self, i: usize, v: Option<&str>) {
        if let Some(Col::Text(b)) = self.cols.get_mut(i) {
            b.append_option(v);
        }
    }
    fn int(&mut self, i: usize, v: Option<i64>) {
        if let Some(Col::Int(b)) = self.cols.get_mut(i) {
            b.append_option(v);
        }
    }
    fn date(&mut self, i: usize, v: Option<chrono::NaiveDate>) {
        if let Some(Col::Date(b)) = self.cols.get_mut(i) {
            b.append_option(v.map(crate::codec::wareki::to_date32));
        }
    }
    fn register(self, ctx: &SessionContext, name: &str) -> Result<(), QueryError> {
        let mut fields = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for (n, c) in self.names.iter().zip(self.cols) {
            let (t, a): (DataType, ArrayRef) = match c {
                Col::Text(mut b) => (DataType::Utf8, Arc::new(b.finish())),
                Col::Int(mut b) => (DataType::Int64, Arc::new(b.finish())),
                Col::Date(mut b) => (DataType::Date32, Arc::new(b.finish())),
            };
            fields.push(Field::new(*n, t, true));
            arrays.push(a);
        }
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), arrays)?;
        ctx.register_table(name, Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))?;
        Ok(())
    }
}

fn register_manifest_tables(ctx: &SessionContext, all: &BTreeMap<String, Vec<Manifest>>) -> Result<(), QueryError> {
    let mut loads = Columns::new(&[
        ("insurer_no", 't'),
        ("version", 'i'),
        ("parent_version", 'i'),
        ("load_id", 't'),
        ("committed_at", 't'),
        ("current", 't'),
        ("files", 'i'),
        ("read", 'i'),
        ("accepted", 'i'),
        ("quarantined", 'i'),
        ("warnings", 'i'),
    ]);
    let mut files = Columns::new(&[
        ("insurer_no", 't'),
        ("version", 'i'),
        ("load_id", 't'),
        ("file", 't'),
        ("layout", 't'),
        ("bytes", 'i'),
        ("sha256", 't'),
        ("read", 'i'),
        ("accepted", 'i'),
        ("quarantined", 'i'),
        ("warnings", 'i'),
        ("rejected", 't'),
    ]);
    let mut sets = Columns::new(&[
        ("insurer_no", 't'),
        ("version", 'i'),
        ("load_id", 't'),
        ("record_set", 't'),
        ("snapshot_version", 'i'),
        ("rows", 'i'),
        ("load_rows", 'i'),
        ("digest", 't'),
    ]);
    for ms in all.values() {
        for (i, m) in ms.iter().enumerate() {
            let sum = |f: fn(&crate::store::InputEntry) -> u64| m.inputs.iter().map(f).sum::<u64>() as i64;
            loads.text(0, Some(&m.insurer_no));
            loads.int(1, Some(m.version as i64));
            loads.int(2, m.parent_version.map(|v| v as i64));
            loads.text(3, Some(&m.load_id));
            loads.text(4, Some(&m.created_at));
            loads.text(5, Some(if i + 1 == ms.len() { "yes" } else { "no" }));
            loads.int(6, Some(m.inputs.iter().filter(|x| x.rejected.is_none()).count() as i64));
            loads.int(7, Some(sum(|x| x.read)));
            loads.int(8, Some(sum(|x| x.accepted)));
            loads.int(9, Some(sum(|x| x.quarantined)));
            loads.int(10, Some(sum(|x| x.warnings)));
            for inp in &m.inputs {
                files.text(0, Some(&m.insurer_no));
                files.int(1, Some(m.version as i64));
                files.text(2, Some(&m.load_id));
                files.text(3, Some(&inp.file));
                files.text(4, Some(&inp.layout));
                files.int(5, Some(inp.bytes as i64));
                files.text(6, Some(&inp.sha256));
                files.int(7, Some(inp.read as i64));
                files.int(8, Some(inp.accepted as i64));
                files.int(9, Some(inp.quarantined as i64));
                files.int(10, Some(inp.warnings as i64));
                files.text(11, inp.rejected.as_deref());
            }
            for (name, e) in &m.record_sets {
                sets.text(0, Some(&m.insurer_no));
                sets.int(1, Some(m.version as i64));
                sets.text(2, Some(&m.load_id));
                sets.text(3, Some(name));
                sets.int(4, Some(e.version as i64));
                sets.int(5, Some(e.rows as i64));
                sets.int(6, Some(e.load_rows as i64));
                sets.text(7, Some(&e.digest));
            }
        }
    }
    loads.register(ctx, "loads")?;
    files.register(ctx, "load_files")?;
    sets.register(ctx, "load_record_sets")?;
    Ok(())
}

fn register_catalog_tables(ctx: &SessionContext, catalog: &Catalog) -> Result<(), QueryError> {
    let mut rules = Columns::new(&[
        ("rule_id", 't'),
        ("record_set", 't'),
        ("severity", 't'),
        ("kind", 't'),
        ("sql", 't'),
        ("message_ja", 't'),
        ("message_en", 't'),
        ("origin", 't'),
    ]);
    for r in &catalog.rules {
        rules.text(0, Some(&r.id));
        rules.text(1, Some(&r.record_set));
        rules.text(2, Some(r.severity.as_str()));
        rules.text(3, Some(r.kind()));
        rules.text(4, Some(r.sql().trim()));
        rules.text(5, Some(&r.message_ja));
        rules.text(6, Some(&r.message_en));
        rules.text(7, Some(&r.origin));
    }
    rules.register(ctx, "rules")?;
    let mut codes =
        Columns::new(&[("code_table", 't'), ("code", 't'), ("label", 't'), ("valid_from", 'd'), ("valid_to", 'd'), ("value", 't')]);
    for (name, t) in &catalog.codes {
        for c in &t.codes {
            codes.text(0, Some(name));
            codes.text(1, Some(&c.code));
            codes.text(2, Some(&c.label));
            codes.date(3, c.valid_from);
            codes.date(4, c.valid_to);
            codes.text(5, c.value.as_deref());
        }
    }
    codes.register(ctx, "code_tables")?;
    Ok(())
}

/// Runs one SQL statement over the store and returns its batches.
pub async fn run(store_root: &Path, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), QueryError> {
    let ctx = session(store_root).await?;
    let df = ctx.sql(sql).await?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    Ok((schema, batches))
}
