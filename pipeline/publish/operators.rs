//! Operators' tools (SPEC §1): replaying a load to a platform and verifying a platform's state
//! against the store.

use super::{Plan, PlatformClient, PublishError, Published, Target, plan, send_batches};
use crate::ledger::Ledger;
use crate::protocol::{Commit, OpenLoad};
use crate::schema::SchemaRegistry;
use crate::store::Store;
use std::collections::BTreeMap;

/// Re-sends a stored load's changes to `target` (any platform: the one it was published to, or
/// another being rebuilt load by load). The platform makes it idempotent: a load it committed
/// answers with its receipt. The ledger's batches and status are not touched; the replay is
/// recorded as an event of the load.
pub fn replay(ledger: &Ledger, store: &Store, schemas: &SchemaRegistry, target: &Target, load_id: &str) -> Result<Published, PublishError> {
    let started = std::time::Instant::now();
    let inconsistent = |reason: String| PublishError::Inconsistent { load_id: load_id.to_string(), reason };
    let load = ledger.load(load_id)?.ok_or_else(|| inconsistent("no such load in the ledger".into()))?;
    let version = load.version.ok_or_else(|| inconsistent(format!("the load is {} and has no stored version to replay", load.status)))?;
    let manifest = store.manifest(&load.insurer_no, version)?;
    let mut plan: Plan = plan(ledger, store, &load, &manifest)?;
    // A published load is replayed against the platform version it was committed on.
    if let Some(r) = ledger.receipt(load_id)? {
        plan.platform_base_version = r.platform_version.saturating_sub(1);
    }
    let mut client = target.client()?;
    let mut published = deliver(&mut client, &plan, schemas, target.batch_rows, true)?;
    published.seconds = started.elapsed().as_secs_f64();
    ledger.event(
        load_id,
        "replayed",
        &format!(
            "replayed to {}: receipt {} (platform version {}, {} batches sent)",
            target.url, published.receipt.receipt_id, published.receipt.version, published.sent
        ),
    )?;
    Ok(published)
}

/// Open, every batch, commit: a plan delivered without ledger bookkeeping (replays, benchmarks).
/// `replay` marks the load as a replay, which a platform may reserve to logged-in persons.
pub fn deliver(
    client: &mut PlatformClient,
    plan: &Plan,
    schemas: &SchemaRegistry,
    batch_rows: usize,
    replay: bool,
) -> Result<Published, PublishError> {
    let started = std::time::Instant::now();
    let opened = client.open(&OpenLoad {
        insurer_no: plan.insurer_no.clone(),
        load_id: plan.load_id.clone(),
        base_version: plan.platform_base_version,
        record_sets: plan.sets.keys().cloned().collect(),
        replay,
    })?;
    let mut published = Published::start(plan);
    published.receipt = match opened.receipt {
        Some(r) => r,
        None => {
            let mut commit = Commit::default();
            send_batches(None, client, plan, schemas, batch_rows, &BTreeMap::new(), &mut commit, &mut published)?;
            let committing = std::time::Instant::now();
            let r = client.commit(&plan.load_id, &commit)?;
            published.commit_seconds = committing.elapsed().as_secs_f64();
            r
        }
    };
    published.seconds = started.elapsed().as_secs_f64();
    Ok(published)
}

/// One record set, in the store and on the platform.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SetComparison {
    pub record_set: String,
    pub store_rows: u64,
    pub store_digest: String,
    pub platform_rows: u64,
    pub platform_digest: String,
    pub equal: bool,
}

/// `kiban loads verify`: the platform's state against the last published version of the store.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verification {
    pub insurer_no: String,
    pub platform_url: String,
    pub store_version: Option<u64>,
    /// The platform version the ledger's last receipt names.
    pub expected_platform_version: Option<u64>,
    pub platform_version: u64,
    pub record_sets: Vec<SetComparison>,
}

impl Verification {
    pub fn differs(&self) -> bool {
        self.record_sets.iter().any(|s| !s.equal) || self.expected_platform_version.is_some_and(|v| v != self.platform_version)
    }
}

/// Compares the platform's state digest per record set with the store's last published snapshot.
pub fn verify(ledger: &Ledger, store: &Store, client: &mut PlatformClient, insurer_no: &str) -> Result<Verification, PublishError> {
    let published = ledger.published_version(insurer_no)?;
    let manifest = match &published {
        Some(v) => Some(store.manifest(insurer_no, v.version)?),
        None => None,
    };
    let expected_platform_version = match &published {
        Some(v) => ledger.receipt(&v.load_id)?.map(|r| r.platform_version),
        None => None,
    };
    let state = client.state(insurer_no)?;
    let empty = crate::map::rowset::digest_hex(0);
    let mut names: Vec<String> = state.record_sets.keys().cloned().collect();
    if let Some(m) = &manifest {
        names.extend(m.record_sets.keys().cloned());
    }
    names.sort();
    names.dedup();
    let record_sets = names
        .into_iter()
        .map(|name| {
            let (store_rows, store_digest) =
                manifest.as_ref().and_then(|m| m.record_sets.get(&name)).map_or((0, empty.clone()), |e| (e.rows, e.digest.clone()));
            let (platform_rows, platform_digest) = state.record_sets.get(&name).map_or((0, empty.clone()), |s| (s.rows, s.digest.clone()));
            let equal = store_rows == platform_rows && (store_digest == platform_digest || store_rows == 0);
            SetComparison { record_set: name, store_rows, store_digest, platform_rows, platform_digest, equal }
        })
        .collect();
    Ok(Verification {
        insurer_no: insurer_no.to_string(),
        platform_url: client.url().to_string(),
        store_version: published.map(|v| v.version),
        expected_platform_version,
        platform_version: state.version,
        record_sets,
    })
}
