//! The configuration data a job runs on: record sets (`schemas/`), layouts, code, era and 外字
//! tables (`mappings/`). The shipped files are embedded in the binary; a job may name mapping
//! files of its own by path.

use crate::codec::gaiji::{GaijiTable, GaijiTableError};
use crate::codec::wareki::{EraTable, EraTableError};
use crate::map::codes::{CodeTable, CodeTableError};
use crate::map::compile::{Layout, MappingError, compile};
use crate::schema::{SchemaError, SchemaRegistry, parse_schema};
use crate::validate::rules::{Rule, RuleFileError, derived_rules, parse_rule_file};
use std::collections::BTreeMap;
use std::path::Path;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Codes(#[from] CodeTableError),
    #[error("mappings/eras.tsv: {0}")]
    Eras(#[from] EraTableError),
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error("外字 table {file}: {source}")]
    Gaiji { file: String, source: GaijiTableError },
    #[error(transparent)]
    Rules(#[from] RuleFileError),
    #[error("{0}")]
    Missing(String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

pub struct Catalog {
    pub schemas: SchemaRegistry,
    pub codes: BTreeMap<String, CodeTable>,
    pub eras: EraTable,
    /// Every validation rule: derived from the schemas' columns, then `schemas/<set>.rules.toml`.
    pub rules: Vec<Rule>,
    layouts: BTreeMap<String, (String, &'static str)>,
    gaiji: BTreeMap<String, (String, &'static str)>,
}

impl Catalog {
    /// The shipped schemas and mappings.
    pub fn embedded() -> Result<Catalog, CatalogError> {
        let mut schemas = SchemaRegistry::default();
        let mut codes = BTreeMap::new();
        let mut layouts = BTreeMap::new();
        let mut gaiji = BTreeMap::new();
        let mut eras = None;
        let mut rule_files = Vec::new();
        for (path, text) in embedded::FILES {
            let stem = Path::new(path).file_stem().and_then(|s| s.to_str()).unwrap_or("").to_string();
            if let Some(set) = path.strip_prefix("schemas/").and_then(|p| p.strip_suffix(".rules.toml")) {
                rule_files.push((*path, set, *text));
            } else if path.starts_with("schemas/") {
                schemas.insert(path, parse_schema(path, text)?)?;
            } else if path.starts_with("mappings/codes/") {
                codes.insert(stem.clone(), CodeTable::from_tsv(&stem, text)?);
            } else if path.starts_with("mappings/gaiji/") {
                gaiji.insert(stem, (path.to_string(), *text));
            } else if *path == "mappings/eras.tsv" {
                eras = Some(EraTable::from_tsv(text)?);
            } else if path.starts_with("mappings/") && path.ends_with(".toml") && !path["mappings/".len()..].contains('/') {
                layouts.insert(stem, (path.to_string(), *text));
            }
        }
        let eras = eras.ok_or_else(|| CatalogError::Missing("mappings/eras.tsv is missing".into()))?;
        let mut rules = Vec::new();
        for s in schemas.sets.values() {
            rules.extend(derived_rules(s, &format!("schemas/{}.toml", s.name), &codes));
        }
        for (path, set, text) in rule_files {
            if schemas.get(set).is_none() {
                return Err(CatalogError::Missing(format!("{path}: there is no record set `{set}` (schemas/{set}.toml)")));
            }
            rules.extend(parse_rule_file(path, set, text)?);
        }
        Ok(Catalog { schemas, codes, eras, rules, layouts, gaiji })
    }

    pub fn layout_names(&self) -> impl Iterator<Item = &str> {
        self.layouts.keys().map(String::as_str)
    }

    /// A layout by its shipped name, or a mapping file (a path ending in `.toml`, relative to
    /// `base`).
    pub fn layout(&self, name_or_path: &str, base: &Path) -> Result<Layout, CatalogError> {
        if name_or_path.ends_with(".toml") {
            let path = base.join(name_or_path);
            let text = std::fs::read_to_string(&path).map_err(|source| CatalogError::Io { path: path.display().to_string(), source })?;
            return Ok(compile(&path.display().to_string(), &text, &self.schemas, &self.codes)?);
        }
        let (file, text) = self.layouts.get(name_or_path).ok_or_else(|| {
            let known: Vec<&str> = self.layout_names().collect();
            CatalogError::Missing(format!(
                "unknown mapping `{name_or_path}` (shipped: {}; or give a path to a .toml mapping file)",
                known.join(", ")
            ))
        })?;
        Ok(compile(file, text, &self.schemas, &self.codes)?)
    }

    /// Every shipped layout, compiled: a check that the shipped data agree.
    pub fn compile_all(&self) -> Result<Vec<Layout>, CatalogError> {
        self.layouts.iter().map(|(_, (file, text))| Ok(compile(file, text, &self.schemas, &self.codes)?)).collect()
    }

    /// The shipped 外字 table of an insurer, if any.
    pub fn shipped_gaiji(&self, insurer_no: &str) -> Result<Option<GaijiTable>, CatalogError> {
        match self.gaiji.get(insurer_no) {
            None => Ok(None),
            Some((file, text)) => GaijiTable::from_tsv(text).map(Some).map_err(|source| CatalogError::Gaiji { file: file.clone(), source }),
        }
    }
}
