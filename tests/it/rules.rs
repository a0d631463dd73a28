//! The shipped rules: each passes its own test, and a broken rule is a configuration error that
//! names its file and rule before any data is read.

use kiban::job::catalog::Catalog;
use kiban::validate::{Validator, rules::parse_rule_file, run_rule_test};

fn run_date() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
}

fn validator(catalog: &Catalog, rules: &[kiban::validate::Rule]) -> Result<Validator, kiban::validate::ValidateError> {
    Validator::compile(&catalog.schemas.sets, rules, &catalog.codes, run_date())
}

#[test]
fn every_shipped_rule_passes_its_own_test() {
    let catalog = Catalog::embedded().unwrap();
    let v = validator(&catalog, &catalog.rules).unwrap();
    let mut failures = Vec::new();
    for (i, r) in v.rules().iter().enumerate() {
        if let Err(e) = run_rule_test(&v, i) {
            failures.push(format!("{} ({}): {e}", r.id, r.origin));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The rules SPEC §6 names exist.
    let ids: Vec<&str> = v.rules().iter().map(|r| r.id.as_str()).collect();
    for want in [
        "recipient.insurer_no.shape",
        "recipient.insured_no.shape",
        "recipient.care_level.code",
        "certification_survey.item_74.code",
        "insured_person.birth_date_range",
        "insured_person.age_first_category",
        "insured_person.age_second_category",
        "certification.validity_legal_maximum",
        "certification.decision_after_application",
        "copayment_ratio.period_overlap",
        "cost_limit.period_overlap",
        "recipient.same_period_same_care_level",
        "recipient.insured_person_exists",
        "certification.specified_disease_second_category",
        "care_plan_notification.support_office_no_check_digit",
        "insured_person.insurer_no_check_digit",
    ] {
        assert!(ids.contains(&want), "missing rule {want}");
    }
}

fn broken(check: &str) -> String {
    let catalog = Catalog::embedded().unwrap();
    let text =
        format!("[[rules]]\nid = \"recipient.broken\"\nseverity = \"error\"\n{check}\nmessage_ja = \"壊れた\"\nmessage_en = \"broken\"\n");
    let mut rules = catalog.rules.clone();
    rules.extend(parse_rule_file("schemas/recipient.rules.toml", "recipient", &text).unwrap());
    match validator(&catalog, &rules) {
        Ok(_) => panic!("{check} compiled"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn broken_rules_are_configuration_errors_naming_file_and_rule() {
    for (check, says) in [
        ("check = \"valid_from <=\"", "SQL"),
        ("check = \"no_such_column = 1\"", "no_such_column"),
        ("check = \"code_valid('no_such_table', care_level)\"", "unknown code table `no_such_table`"),
        ("check = \"care_level\"", "boolean"),
        ("query = \"SELECT insured_no FROM recipient\"", "key columns"),
        ("query = \"SELECT * FROM no_such_set\"", "no_such_set"),
    ] {
        let e = broken(check);
        assert!(e.starts_with("schemas/recipient.rules.toml: rule `recipient.broken`:"), "{e}");
        assert!(e.to_lowercase().contains(&says.to_lowercase()), "{check}: {e}");
    }
}

#[test]
fn a_rule_test_that_does_not_hold_is_reported() {
    let catalog = Catalog::embedded().unwrap();
    let text = "[[rules]]\nid = \"recipient.wrong_test\"\nseverity = \"error\"\ncheck = \"valid_from <= valid_to\"\n\
                message_ja = \"あ\"\nmessage_en = \"a\"\ntest.pass = { valid_from = \"2025-01-02\", valid_to = \"2025-01-01\" }\n\
                test.fail = { valid_from = \"2025-01-01\", valid_to = \"2025-01-02\" }\n";
    let rules = parse_rule_file("f.toml", "recipient", text).unwrap();
    let v = validator(&catalog, &rules).unwrap();
    let e = run_rule_test(&v, 0).unwrap_err();
    assert!(e.contains("passing case was flagged"), "{e}");
}
