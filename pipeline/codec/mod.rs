//! Codecs: bytes of a field to text and typed values. They depend on no pipeline stage.
//!
//! ```text
//!  field bytes ──► cp932::decode_field ──► gaiji::GaijiTable::apply ──► text
//!                  (strict: offset of the              (PUA → Unicode,
//!                   first bad byte on error)            unmapped kept + warned)
//!  text ──► wareki::parse_date ──► Date32      text ──► kana::nfkc ──► 全角カナ
//! ```
//!
//! Every function here is pure and works on one field at a time, so the readers can call them in
//! any order and the property tests can compare streaming and one-shot decoding.

pub mod cp932;
pub mod gaiji;
pub mod kana;
pub mod wareki;
