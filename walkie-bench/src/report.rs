//! Output: a readable line per step on stderr, one JSON object per run on
//! stdout (for scripts and the tables of `docs/performance.md`).

use serde_json::Value;

/// Prints one step or phase as `key=value` pairs on stderr.
pub fn line(label: &str, row: &Value) {
    let fields: Vec<String> = match row.as_object() {
        Some(object) => object.iter().map(|(key, value)| format!("{key}={value}")).collect(),
        None => vec![row.to_string()],
    };
    eprintln!("{label:>8}  {}", fields.join("  "));
}

/// Prints the run's summary as one JSON line on stdout.
pub fn json_line(summary: &Value) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    // ignore: nothing useful to do when stdout is gone.
    let _ = writeln!(stdout, "{summary}");
}
