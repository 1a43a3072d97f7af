//! Writes calibrated tolerances into a suite file, keeping everything else
//! (comments, order, formatting) as it was: the change is a reviewable diff.

use toml_edit::{DocumentMut, InlineTable, Item, Table, Value};

/// Sets `metric."NAME".tolerance` in the `[[scenario]]` named `scenario`
/// for each `(NAME, tolerance)`. An existing rule keeps its other keys; a
/// missing one is added as `metric."NAME" = { tolerance = … }`.
pub fn set_tolerances(
    text: &str,
    scenario: &str,
    tolerances: &[(String, f64)],
) -> Result<String, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    let tables = doc
        .get_mut("scenario")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or("no [[scenario]] tables")?;
    let table = tables
        .iter_mut()
        .find(|t| t.get("name").and_then(Item::as_str) == Some(scenario))
        .ok_or_else(|| format!("no [[scenario]] named `{scenario}`"))?;
    if !table.contains_key("metric") {
        let mut metric = Table::new();
        metric.set_dotted(true);
        table.insert("metric", Item::Table(metric));
    }
    let metric = table
        .get_mut("metric")
        .and_then(Item::as_table_like_mut)
        .ok_or("`metric` is not a table")?;
    for (name, tol) in tolerances {
        let rounded = (tol * 1000.0).round() / 1000.0;
        match metric.get_mut(name) {
            Some(item) => {
                let rule = item
                    .as_table_like_mut()
                    .ok_or_else(|| format!("`metric.\"{name}\"` is not a table"))?;
                rule.insert("tolerance", toml_edit::value(rounded));
            }
            None => {
                let mut rule = InlineTable::new();
                rule.insert("tolerance", Value::from(rounded));
                metric.insert(name, Item::Value(Value::InlineTable(rule)));
            }
        }
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUITE: &str = r#"# my suite
[suite]
name = "s"

[[scenario]]
name = "a"
kind = "command"
command = ["true"]
metric."m" = { tolerance = 0.05, max = "1ms" } # keep me

[[scenario]]
name = "b"
kind = "command"
command = ["true"]
"#;

    #[test]
    fn updates_an_existing_rule_and_keeps_the_rest() {
        let out = set_tolerances(SUITE, "a", &[("m".into(), 0.03)]).unwrap();
        assert!(
            out.contains(r#"metric."m" = { tolerance = 0.03, max = "1ms" } # keep me"#),
            "{out}"
        );
        assert!(out.starts_with("# my suite\n"));
        let back: toml::Value = toml::from_str(&out).unwrap();
        assert_eq!(
            back["scenario"][0]["metric"]["m"]["tolerance"].as_float(),
            Some(0.03)
        );
    }

    #[test]
    fn adds_a_rule_to_a_scenario_without_one() {
        let out = set_tolerances(SUITE, "b", &[("wall_time".into(), 0.075)]).unwrap();
        let back: toml::Value = toml::from_str(&out).unwrap();
        assert_eq!(
            back["scenario"][1]["metric"]["wall_time"]["tolerance"].as_float(),
            Some(0.075)
        );
        assert_eq!(back["scenario"][1]["name"].as_str(), Some("b"));
        // Scenario a is untouched.
        assert!(out.contains(r#"metric."m" = { tolerance = 0.05, max = "1ms" } # keep me"#));
    }

    #[test]
    fn unknown_scenario_is_an_error() {
        assert!(
            set_tolerances(SUITE, "zzz", &[])
                .unwrap_err()
                .contains("zzz")
        );
    }
}
