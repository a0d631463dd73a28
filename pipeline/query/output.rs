//! Writing query results: an aligned table for people, CSV and JSON for scripts, Parquet for
//! further analysis (SPEC §11 `--format table|csv|json|parquet`).

use super::QueryError;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Parquet,
}

fn io(e: std::io::Error) -> QueryError {
    QueryError::Output(e.to_string())
}

/// Writes `batches` (of `schema`) to `out`. An empty result still has its header: the column
/// names for table and CSV, `[]` for JSON, a valid empty file for Parquet.
pub fn write<W: Write + Send>(format: Format, schema: &SchemaRef, batches: &[RecordBatch], mut out: W) -> Result<(), QueryError> {
    match format {
        Format::Table => {
            let t = arrow::util::pretty::pretty_format_batches_with_schema(schema.clone(), batches)?;
            writeln!(out, "{t}").map_err(io)?;
        }
        Format::Csv => {
            let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(&mut out);
            if batches.iter().all(|b| b.num_rows() == 0) {
                drop(w);
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                writeln!(out, "{}", names.join(",")).map_err(io)?;
            } else {
                for b in batches {
                    w.write(b)?;
                }
            }
        }
        Format::Json => {
            if batches.iter().all(|b| b.num_rows() == 0) {
                writeln!(out, "[]").map_err(io)?;
            } else {
                let mut w = arrow::json::ArrayWriter::new(&mut out);
                for b in batches {
                    w.write(b)?;
                }
                w.finish()?;
                drop(w);
                writeln!(out).map_err(io)?;
            }
        }
        Format::Parquet => {
            let props = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::ZSTD(parquet::basic::ZstdLevel::default()))
                .build();
            let mut w =
                parquet::arrow::ArrowWriter::try_new(out, schema.clone(), Some(props)).map_err(|e| QueryError::Output(e.to_string()))?;
            for b in batches {
                w.write(b).map_err(|e| QueryError::Output(e.to_string()))?;
            }
            w.close().map_err(|e| QueryError::Output(e.to_string()))?;
        }
    }
    Ok(())
}
