//! placeholder until the generator lands
use std::path::PathBuf;
pub struct SampleOptions { pub insurer_no: String, pub persons: u64, pub out_dir: PathBuf, pub seed: u64, pub month: (i32, u32) }
pub struct SampleFile { pub path: PathBuf, pub format: &'static str, pub data_records: u64, pub bytes: u64 }
pub struct SampleSummary { pub files: Vec<SampleFile>, pub job_file: PathBuf, pub gaiji_table: PathBuf }
#[derive(Debug, thiserror::Error)]
pub enum SampleError { #[error("invalid insurer {0}")] InvalidInsurer(String) }
pub fn generate(o: &SampleOptions) -> Result<SampleSummary, SampleError> { Err(SampleError::InvalidInsurer(o.insurer_no.clone())) }
