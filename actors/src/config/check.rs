//! Where a config-file error is: every error found in a file names the file, the line, the
//! column and the key (`rtmd.toml:3:15: max-clients: invalid type: …`), whether TOML rejected
//! it (its error span) or a value check did (the key's own line).

use std::path::Path;

use super::{ConfigError, Settings};

/// Reads and parses a config file; returns its settings and its text.
pub fn load(path: &Path) -> Result<(Settings, String), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    match toml::from_str::<Settings>(&text) {
        Ok(s) => Ok((s, text)),
        Err(e) => {
            let offset = e.span().map_or(0, |s| s.start);
            let (line, column) = position(&text, offset);
            Err(ConfigError::At {
                path: path.to_path_buf(),
                line,
                column,
                key: key_on_line(&text, line),
                message: e.message().trim().replace('\n', "; "),
            })
        }
    }
}

/// A value check's error, placed on its key's line in the file when the file set that key (and
/// no flag overrode it).
pub fn in_file(e: ConfigError, file: Option<(&Path, &str)>, flags: &Settings) -> ConfigError {
    let (ConfigError::Value { key, value, why }, Some((path, text))) = (&e, file) else {
        return e;
    };
    let by_flag = flags.entries().iter().any(|(k, v)| k == key && v.is_some());
    match key_position(text, key) {
        Some((line, column)) if !by_flag => ConfigError::At {
            path: path.to_path_buf(),
            line,
            column,
            key: Some(key.to_string()),
            message: format!("\"{value}\": {why}"),
        },
        _ => e,
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The key a `key = value` line sets (quotes removed).
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line - 1)?;
    let (key, _) = l.split_once('=')?;
    let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
    (!key.is_empty() && !key.starts_with('#')).then(|| key.to_string())
}

/// Line and column where `key` is set.
fn key_position(text: &str, key: &str) -> Option<(usize, usize)> {
    text.lines().enumerate().find_map(|(i, l)| {
        let k = key_on_line(l, 1)?;
        (k == key).then(|| (i + 1, l.len() - l.trim_start().len() + 1))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_of(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rtmd.toml");
        std::fs::write(&p, text).unwrap();
        let e = match load(&p) {
            Err(e) => e,
            Ok((s, text)) => {
                let c = super::super::Config::resolve(&s).unwrap_err();
                in_file(c, Some((&p, &text)), &Settings::default())
            }
        };
        e.to_string().replace(&p.display().to_string(), "F")
    }

    #[test]
    fn errors_name_file_line_column_and_key() {
        assert_eq!(
            err_of("# limits\nmax-clients = \"ten\"\n"),
            "F:2:15: max-clients: invalid type: string \"ten\", expected u32"
        );
        assert_eq!(
            err_of("max-client = 3\n"),
            format!(
                "F:1:1: max-client: {}",
                toml::from_str::<Settings>("max-client = 3")
                    .unwrap_err()
                    .message()
            )
        );
        assert_eq!(
            err_of("instance = \"t\"\n  route-capacity = 0\n"),
            "F:2:3: route-capacity: \"0\": must be at least 1"
        );
        assert_eq!(
            err_of("client-queue = 0"),
            "F:1:1: client-queue: \"0\": must be at least 1"
        );
    }
}
