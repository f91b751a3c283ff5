//! Arguments several commands share, and parsers for the enums and numbers
//! of the layers below (which do not know clap).

use std::str::FromStr;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::Args;

use crate::plugin::SandboxPolicy;

#[derive(Debug, Args, Clone, Default)]
pub struct PluginParams {
    /// A plugin parameter `key=value` (repeatable).
    #[arg(long = "plugin-arg", value_parser = parse_key_value)]
    pub plugin_args: Vec<(String, String)>,
}

pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{s}` is not key=value"))
}

/// The sandbox limits, as flags; defaults from [`SandboxPolicy::default`].
#[derive(Debug, Args, Clone, Default)]
pub struct SandboxArgs {
    /// Memory cap of one plugin instance, MiB [default: 512].
    #[arg(long)]
    pub plugin_memory_mib: Option<usize>,
    /// CPU deadline of one call into a plugin, ms [default: 10000].
    #[arg(long)]
    pub plugin_deadline_ms: Option<u64>,
    /// Most distinct keys one task may return [default: 5000000].
    #[arg(long)]
    pub plugin_max_keys: Option<usize>,
    /// Longest key a plugin may return, bytes [default: 4096].
    #[arg(long)]
    pub plugin_max_key_bytes: Option<usize>,
}

impl SandboxArgs {
    pub fn policy(&self) -> SandboxPolicy {
        let mut policy = SandboxPolicy::default();
        if let Some(mib) = self.plugin_memory_mib {
            policy.max_memory_bytes = mib << 20;
        }
        if let Some(ms) = self.plugin_deadline_ms {
            policy.call_deadline = Duration::from_millis(ms);
        }
        if let Some(n) = self.plugin_max_keys {
            policy.max_keys = n;
        }
        if let Some(n) = self.plugin_max_key_bytes {
            policy.max_key_bytes = n;
        }
        policy
    }
}

/// A parser for an enum of a lower layer from its names (shown in `--help`).
pub fn one_of<T>(names: &'static [&'static str]) -> impl TypedValueParser<Value = T>
where
    T: FromStr<Err = anyhow::Error> + Clone + Send + Sync + 'static,
{
    PossibleValuesParser::new(names).try_map(|name| name.parse::<T>())
}

/// Seconds (or MB), strictly positive.
pub fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("`{s}` must be a number greater than 0")),
    }
}

/// How files are read: `--column`, `--delimiter`, `--mixed-headers`.
#[derive(Debug, Args, Clone, Default)]
pub struct FormatArgs {
    /// Read the plugin's column PLUGIN_NAME from the file's column
    /// FILE_HEADER, e.g. `--column text=body` (repeatable).
    #[arg(long = "column", value_name = "PLUGIN_NAME=FILE_HEADER", value_parser = parse_key_value)]
    pub columns: Vec<(String, String)>,
    /// Field delimiter: `,` `\t` (or `tab`) `;` `|` [default: `\t` for .tsv files, else `,`].
    #[arg(long, value_parser = parse_delimiter)]
    pub delimiter: Option<u8>,
    /// Read each file by its own header, instead of requiring every file
    /// to have the first file's header.
    #[arg(long)]
    pub mixed_headers: bool,
}

impl FormatArgs {
    pub fn format(&self) -> crate::input::InputFormat {
        crate::input::InputFormat {
            columns: crate::input::ColumnMap(self.columns.clone()),
            delimiter: self.delimiter,
            mixed_headers: self.mixed_headers,
        }
    }
}

fn parse_delimiter(s: &str) -> Result<u8, String> {
    match s {
        "," | "comma" => Ok(b','),
        "\\t" | "\t" | "tab" => Ok(b'\t'),
        ";" | "semicolon" => Ok(b';'),
        "|" | "pipe" => Ok(b'|'),
        other => Err(format!("`{other}` is not a supported delimiter (`,` `\\t` `;` `|`)")),
    }
}
