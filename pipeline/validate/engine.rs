//! Compiling rules into DataFusion and running them over a load.
//!
//! Row rules are planned once, at start-up, into physical expressions over the set's schema; a
//! batch is then checked by evaluating every rule's expression over it — one pass, vectorised,
//! no per-row Rust. Set rules are SQL queries planned against empty tables at start-up (so a
//! typo is a configuration error) and run over the load's tables after the row rules.

use super::functions;
use super::rules::{Rule, RuleBody, Severity};
use crate::map::spill::key_converter;
use crate::schema::{ROW_HASH, RecordSetSchema};
use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::row::Rows;
use chrono::NaiveDate;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::{DFSchema, DataFusionError, TableReference};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::ExprSchemable;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::{SessionConfig, SessionContext};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

/// Schemas of the tables a set rule may read besides this load's rows.
pub const PUBLISHED: &str = "published";
pub const SNAPSHOT: &str = "snapshot";

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// A rule that cannot be planned: a configuration error, found before any data is read.
    #[error("{file}: rule `{rule}`: {reason}")]
    Rule { file: String, rule: String, reason: String },
    #[error("rule `{rule}` ({record_set}) failed while running: {source}")]
    Run { rule: String, record_set: String, source: DataFusionError },
    #[error("validation: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("validation: {0}")]
    DataFusion(#[from] DataFusionError),
    #[error("validation: cannot start the query runtime: {0}")]
    Runtime(std::io::Error),
}

struct RowRule {
    rule: usize,
    expr: Arc<dyn PhysicalExpr>,
}

struct CompiledSet {
    schema: Arc<RecordSetSchema>,
    /// The schema row rules see: the set's columns without `row_hash`.
    row_schema: SchemaRef,
    row: Vec<RowRule>,
    set: Vec<usize>,
}

/// The rules of every record set, planned and ready to run.
pub struct Validator {
    rules: Vec<Arc<Rule>>,
    sets: BTreeMap<String, CompiledSet>,
    udfs: Vec<datafusion::logical_expr::ScalarUDF>,
    all_schemas: BTreeMap<String, Arc<RecordSetSchema>>,
    /// Tables set rules read, as (schema, set): `("", s)`, `("published", s)`, `("snapshot", s)`.
    referenced: BTreeSet<(String, String)>,
}

/// A row that failed rules: its index in the checked batch and the indices of the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowHit {
    pub row: u32,
    pub rules: Vec<usize>,
}

/// Every table a set rule may read, by record set.
#[derive(Default)]
pub struct SetTables {
    /// This load's rows (row rules passed, later-wins applied).
    pub load: BTreeMap<String, RecordBatch>,
    /// The last published snapshot.
    pub published: BTreeMap<String, RecordBatch>,
    /// The snapshot this load would leave.
    pub snapshot: BTreeMap<String, RecordBatch>,
    /// Tables kept in Parquet files rather than in memory (the streaming load's), by table
    /// schema (`""` for this load's rows, [`PUBLISHED`], [`SNAPSHOT`]) and record set; a table
    /// here is read from its files, a batch of the same name is ignored.
    pub files: BTreeMap<(String, String), Vec<std::path::PathBuf>>,
}

impl SetTables {
    /// Whether `set` has rows of this load to check.
    fn has_load(&self, set: &str) -> bool {
        self.files.contains_key(&(String::new(), set.to_string())) || self.load.get(set).is_some_and(|b| b.num_rows() > 0)
    }
}

/// A table over Parquet files of one record set, with the files' own schema (a snapshot keeps
/// `row_hash` as bytes; rules read the other columns).
fn parquet_table(paths: &[std::path::PathBuf]) -> Result<Arc<dyn datafusion::catalog::TableProvider>, DataFusionError> {
    use datafusion::datasource::file_format::parquet::ParquetFormat;
    use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
    let first = paths.first().ok_or_else(|| DataFusionError::Plan("a file table without files".into()))?;
    let file = std::fs::File::open(first).map_err(|e| DataFusionError::External(Box::new(e)))?;
    let schema = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?.schema().clone();
    let urls = paths.iter().map(|p| ListingTableUrl::parse(p.to_string_lossy())).collect::<Result<Vec<_>, _>>()?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls).with_listing_options(options).with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

fn without_row_hash(schema: &RecordSetSchema) -> SchemaRef {
    let fields: Vec<Field> = schema.arrow.fields().iter().filter(|f| f.name() != ROW_HASH).map(|f| f.as_ref().clone()).collect();
    Arc::new(Schema::new(fields))
}

/// Every field nullable: test tables and empty planning tables need not honour NOT NULL.
pub fn relaxed(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<_>>()))
}

fn session(udfs: &[datafusion::logical_expr::ScalarUDF]) -> SessionContext {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(threads).with_information_schema(false));
    for f in udfs {
        ctx.register_udf(f.clone());
    }
    ctx
}

fn runtime() -> Result<tokio::runtime::Runtime, ValidateError> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(ValidateError::Runtime)
}

impl Validator {
    /// Plans every rule. `run_date` is what `run_date()` returns.
    pub fn compile(
        schemas: &BTreeMap<String, Arc<RecordSetSchema>>,
        rules: &[Rule],
        codes: &BTreeMap<String, crate::map::codes::CodeTable>,
        run_date: NaiveDate,
    ) -> Result<Validator, ValidateError> {
        let udfs = functions::all(codes, run_date);
        let ctx = session(&udfs);
        let mut v = Validator { rules: Vec::new(), sets: BTreeMap::new(), udfs, all_schemas: schemas.clone(), referenced: BTreeSet::new() };
        for s in schemas.values() {
            v.sets.insert(
                s.name.clone(),
                CompiledSet { schema: s.clone(), row_schema: without_row_hash(s), row: Vec::new(), set: Vec::new() },
            );
        }
        let planning = v.tables_context(&SetTables::default())?;
        let rt = runtime()?;
        let mut seen = HashSet::new();
        for r in rules {
            let err = |reason: String| ValidateError::Rule { file: r.origin.clone(), rule: r.id.clone(), reason };
            if !seen.insert(r.id.clone()) {
                return Err(err("a second rule with this id".into()));
            }
            let Some(set) = v.sets.get_mut(&r.record_set) else {
                return Err(err(format!("unknown record set `{}`", r.record_set)));
            };
            let index = v.rules.len();
            match &r.body {
                RuleBody::Row(sql) => {
                    let expr = plan_row_rule(&ctx, &set.row_schema, sql).map_err(err)?;
                    set.row.push(RowRule { rule: index, expr });
                }
                RuleBody::Set(sql) => {
                    let plan = rt.block_on(planning.state().create_logical_plan(sql)).map_err(|e| err(first_line(&e)))?;
                    let got: Vec<&str> = plan.schema().fields().iter().map(|f| f.name().as_str()).collect();
                    let want = set.schema.key_names();
                    if got != want {
                        return Err(err(format!(
                            "a set rule returns the key columns ({}); this query returns ({})",
                            want.join(", "),
                            got.join(", ")
                        )));
                    }
                    set.set.push(index);
                    // Which tables the rule reads, subqueries included: the run loads only those.
                    let referenced = &mut v.referenced;
                    let _ = plan.apply_with_subqueries(|node| {
                        if let datafusion::logical_expr::LogicalPlan::TableScan(ts) = node {
                            referenced.insert((ts.table_name.schema().unwrap_or("").to_string(), ts.table_name.table().to_string()));
                        }
                        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
                    });
                }
            }
            v.rules.push(Arc::new(r.clone()));
        }
        Ok(v)
    }

    pub fn schemas(&self) -> &BTreeMap<String, Arc<RecordSetSchema>> {
        &self.all_schemas
    }

    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    pub fn rule(&self, i: usize) -> &Rule {
        &self.rules[i]
    }

    pub fn row_rule_count(&self, set: &str) -> usize {
        self.sets.get(set).map_or(0, |s| s.row.len())
    }

    /// Whether some set rule reads `schema.set` (`schema` is [`PUBLISHED`] or [`SNAPSHOT`]).
    pub fn reads(&self, schema: &str, set: &str) -> bool {
        self.referenced.contains(&(schema.to_string(), set.to_string()))
    }

    /// Whether the set rules read this load's rows of `set` (a rule of the set, or a rule that
    /// reads the bare table).
    pub fn reads_load(&self, set: &str) -> bool {
        self.sets.get(set).is_some_and(|s| !s.set.is_empty()) || self.reads("", set)
    }

    pub fn has_set_rules(&self) -> bool {
        self.sets.values().any(|s| !s.set.is_empty())
    }

    /// The schema a batch given to [`Validator::check_rows`] must have.
    pub fn row_schema(&self, set: &str) -> Option<SchemaRef> {
        self.sets.get(set).map(|s| s.row_schema.clone())
    }

    /// Evaluates every row rule of `set` over `batch` (the set's columns without `row_hash`).
    /// Returns the rows that failed at least one rule, in row order.
    pub fn check_rows(&self, set: &str, batch: &RecordBatch) -> Result<Vec<RowHit>, ValidateError> {
        let Some(cs) = self.sets.get(set) else { return Ok(Vec::new()) };
        let mut pairs: Vec<(u32, usize)> = Vec::new();
        for rr in &cs.row {
            let value = rr.expr.evaluate(batch).and_then(|v| v.into_array(batch.num_rows())).map_err(|source| ValidateError::Run {
                rule: self.rules[rr.rule].id.clone(),
                record_set: set.to_string(),
                source,
            })?;
            let Some(b) = value.as_any().downcast_ref::<BooleanArray>() else {
                return Err(ValidateError::Run {
                    rule: self.rules[rr.rule].id.clone(),
                    record_set: set.to_string(),
                    source: DataFusionError::Execution(format!("returned {} instead of boolean", value.data_type())),
                });
            };
            // Fails = valid and false: a NULL result passes, as an SQL CHECK does.
            let fails = match b.nulls() {
                Some(n) => n.inner() & &!b.values(),
                None => !b.values(),
            };
            if fails.count_set_bits() > 0 {
                pairs.extend(fails.set_indices().map(|i| (i as u32, rr.rule)));
            }
        }
        pairs.sort_unstable();
        let mut out: Vec<RowHit> = Vec::new();
        for (row, rule) in pairs {
            match out.last_mut() {
                Some(h) if h.row == row => h.rules.push(rule),
                _ => out.push(RowHit { row, rules: vec![rule] }),
            }
        }
        Ok(out)
    }

    fn tables_context(&self, t: &SetTables) -> Result<SessionContext, ValidateError> {
        let ctx = session(&self.udfs);
        let catalog = ctx.catalog("datafusion").ok_or_else(|| DataFusionError::Plan("no default catalog".into()))?;
        for name in [PUBLISHED, SNAPSHOT] {
            catalog.register_schema(name, Arc::new(MemorySchemaProvider::new()))?;
        }
        for (name, s) in &self.all_schemas {
            for (schema, source) in [(None, &t.load), (Some(PUBLISHED), &t.published), (Some(SNAPSHOT), &t.snapshot)] {
                let r = match schema {
                    None => TableReference::bare(name.as_str()),
                    Some(sc) => TableReference::partial(sc, name.as_str()),
                };
                if let Some(paths) = t.files.get(&(schema.unwrap_or("").to_string(), name.clone())) {
                    ctx.register_table(r, parquet_table(paths)?)?;
                    continue;
                }
                let table_schema = relaxed(&s.arrow);
                let batches = match source.get(name) {
                    Some(b) if b.num_rows() > 0 => vec![RecordBatch::try_new(table_schema.clone(), b.columns().to_vec())?],
                    _ => Vec::new(),
                };
                let mem = MemTable::try_new(table_schema, vec![batches])?;
                ctx.register_table(r, Arc::new(mem))?;
            }
        }
        Ok(ctx)
    }

    /// Runs every set rule. Returns, per rule that fired, the record set and the indices of the
    /// offending rows in `tables.load[set]`.
    pub fn check_sets(&self, tables: &SetTables) -> Result<Vec<(usize, Vec<u32>)>, ValidateError> {
        let mut out = Vec::new();
        for (ri, keys) in self.offending_keys(tables)? {
            let cs = &self.sets[&self.rules[ri].record_set];
            let Some(load) = tables.load.get(&cs.schema.name) else { continue };
            let keys: hashbrown::HashSet<&[u8]> = keys.iter().flat_map(|rows| rows.iter().map(|r| r.data())).collect();
            let load_rows =
                key_converter(&cs.schema)?.convert_columns(&cs.schema.key.iter().map(|&k| load.column(k).clone()).collect::<Vec<_>>())?;
            let hit: Vec<u32> = (0..load.num_rows()).filter(|&i| keys.contains(load_rows.row(i).data())).map(|i| i as u32).collect();
            if !hit.is_empty() {
                out.push((ri, hit));
            }
        }
        Ok(out)
    }

    /// Runs every set rule of the sets with rows in this load. Returns, per rule that returned
    /// rows, the keys it returned, as rows of [`key_converter`] (one `Rows` per result batch:
    /// millions of keys stay in a few buffers).
    pub fn offending_keys(&self, tables: &SetTables) -> Result<Vec<(usize, Vec<Rows>)>, ValidateError> {
        if !self.has_set_rules() {
            return Ok(Vec::new());
        }
        let ctx = self.tables_context(tables)?;
        let rt = runtime()?;
        let mut out = Vec::new();
        for cs in self.sets.values() {
            if cs.set.is_empty() || !tables.has_load(&cs.schema.name) {
                continue;
            }
            let conv = key_converter(&cs.schema)?;
            for &ri in &cs.set {
                let rule = &self.rules[ri];
                let run = |e: DataFusionError| ValidateError::Run { rule: rule.id.clone(), record_set: cs.schema.name.clone(), source: e };
                let batches = rt.block_on(async { ctx.sql(rule.sql()).await?.collect().await }).map_err(run)?;
                let mut offending = Vec::new();
                for b in batches.iter().filter(|b| b.num_rows() > 0) {
                    let cols: Vec<ArrayRef> = cs
                        .schema
                        .key
                        .iter()
                        .enumerate()
                        .map(|(i, &k)| arrow::compute::cast(b.column(i), &cs.schema.columns[k].data_type))
                        .collect::<Result<_, _>>()?;
                    offending.push(conv.convert_columns(&cols)?);
                }
                if !offending.is_empty() {
                    out.push((ri, offending));
                }
            }
        }
        Ok(out)
    }

    /// Runs one rule over test tables: true when it flags a row of this set (a row rule over
    /// the single row of `rows[set]`, a set rule over all the tables).
    pub fn run_test(&self, rule: usize, tables: &SetTables) -> Result<bool, ValidateError> {
        let r = &self.rules[rule];
        let Some(cs) = self.sets.get(&r.record_set) else { return Ok(false) };
        match &r.body {
            RuleBody::Row(_) => {
                let Some(batch) = tables.load.get(&r.record_set) else { return Ok(false) };
                let cols: Vec<ArrayRef> = batch
                    .schema()
                    .fields()
                    .iter()
                    .zip(batch.columns())
                    .filter(|(f, _)| f.name() != ROW_HASH)
                    .map(|(_, c)| c.clone())
                    .collect();
                let row_batch = RecordBatch::try_new(relaxed(&cs.row_schema), cols)?;
                let hits = self.check_rows(&r.record_set, &row_batch)?;
                Ok(hits.iter().any(|h| h.rules.contains(&rule)))
            }
            RuleBody::Set(_) => Ok(self.check_sets(tables)?.iter().any(|(ri, _)| *ri == rule)),
        }
    }

    pub fn severity(&self, rule: usize) -> Severity {
        self.rules[rule].severity
    }
}

fn first_line(e: &DataFusionError) -> String {
    let s = e.to_string();
    s.lines().next().unwrap_or("").to_string()
}

fn plan_row_rule(ctx: &SessionContext, schema: &SchemaRef, sql: &str) -> Result<Arc<dyn PhysicalExpr>, String> {
    let df_schema = DFSchema::try_from(relaxed(schema).as_ref().clone()).map_err(|e| first_line(&e))?;
    let expr = ctx.parse_sql_expr(sql, &df_schema).map_err(|e| first_line(&e))?;
    let ty = expr.get_type(&df_schema).map_err(|e| first_line(&e))?;
    if ty != arrow::datatypes::DataType::Boolean {
        return Err(format!("a row rule is a boolean expression; this one is of type {ty}"));
    }
    // Folding constants (and `current_date()`) once, not per batch.
    let info = SimplifyContext::builder().with_schema(Arc::new(df_schema.clone())).with_current_time().build();
    let expr = ExprSimplifier::new(info).simplify(expr).map_err(|e| first_line(&e))?;
    ctx.create_physical_expr(expr, &df_schema).map_err(|e| first_line(&e))
}
