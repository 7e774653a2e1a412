//! `run --config FILE`: a TOML file of `run`'s options, for a service. Each
//! key is an option's long name (`alert-rate = 1e-4`, `quiet = true`,
//! `allow = ["10.0.0.0/8"]`); the file's options go before those of the
//! command line, which win.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// `args` with the options of the `--config FILE` they name (if any)
/// spliced in right after the subcommand `run`.
pub fn expand(args: Vec<OsString>, run: &clap::Command) -> Result<Vec<OsString>> {
    let Some(at) = args.iter().position(|a| a == "run") else {
        return Ok(args);
    };
    let mut path = None;
    for (i, a) in args.iter().enumerate().skip(at + 1) {
        let a = a.to_string_lossy();
        if a == "--config" {
            path = args.get(i + 1).cloned();
        } else if let Some(p) = a.strip_prefix("--config=") {
            path = Some(p.into());
        }
    }
    let Some(path) = path else {
        return Ok(args);
    };
    let options = options(Path::new(&path), run)?;
    let mut expanded = args[..=at].to_vec();
    expanded.extend(options);
    expanded.extend_from_slice(&args[at + 1..]);
    Ok(expanded)
}

/// The command-line options a config file stands for.
fn options(path: &Path, run: &clap::Command) -> Result<Vec<OsString>> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {shown}"))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{shown} is not valid TOML"))?;
    let mut args = Vec::new();
    for (key, value) in table {
        let name = key.replace('_', "-");
        let Some(arg) = run
            .get_arguments()
            .find(|a| a.get_long() == Some(name.as_str()))
        else {
            bail!("{shown}: `{key}` is not an option of `run` (see `ml-sniffing run --help`)");
        };
        if name == "config" {
            bail!("{shown}: a config file cannot name another (`config`)");
        }
        let flag = format!("--{name}");
        let takes_value = arg.get_action().takes_values();
        let values = match &value {
            toml::Value::Array(items) => items.iter().collect(),
            _ => vec![&value],
        };
        for v in values {
            match v {
                toml::Value::Boolean(on) if !takes_value => {
                    if *on {
                        args.push(flag.clone().into());
                    }
                }
                toml::Value::String(s) if takes_value => {
                    args.push(flag.clone().into());
                    args.push(s.into());
                }
                toml::Value::Integer(_) | toml::Value::Float(_) if takes_value => {
                    args.push(flag.clone().into());
                    args.push(v.to_string().into());
                }
                _ => bail!(
                    "{shown}: `{key}` takes {}, not `{v}`",
                    if takes_value {
                        "a value (a string or a number)"
                    } else {
                        "true or false"
                    }
                ),
            }
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    fn run() -> clap::Command {
        crate::cli::Cli::command()
            .find_subcommand("run")
            .expect("run")
            .clone()
    }

    fn expand_with(config: &str, cli: &[&str]) -> Result<Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        std::fs::write(&path, config).unwrap();
        let mut args: Vec<OsString> = vec!["ml-sniffing".into(), "run".into()];
        args.extend(cli.iter().map(OsString::from));
        args.extend(["--config".into(), path.clone().into_os_string()]);
        let out = expand(args, &run())?;
        Ok(out
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .filter(|a| !a.ends_with("run.toml"))
            .collect())
    }

    #[test]
    fn keys_become_options_before_the_command_line() {
        let args = expand_with(
            "warmup = 500\nalert_rate = 1e-3\nquiet = true\njson = false\n\
             allow = [\"10.0.0.0/8\", \"192.0.2.7:53\"]\niface = \"eth1\"\n",
            &["-c", "10"],
        )
        .unwrap();
        assert_eq!(
            args,
            [
                "ml-sniffing",
                "run",
                "--alert-rate",
                "0.001",
                "--allow",
                "10.0.0.0/8",
                "--allow",
                "192.0.2.7:53",
                "--iface",
                "eth1",
                "--quiet",
                "--warmup",
                "500",
                "-c",
                "10",
                "--config"
            ]
        );
    }

    /// The example the service unit reads parses as `run`'s options.
    #[test]
    fn the_packaged_config_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/run.toml");
        let args: Vec<OsString> = vec![
            "ml-sniffing".into(),
            "run".into(),
            "--config".into(),
            path.into(),
        ];
        let args = expand(args, &run()).unwrap();
        let cli = crate::cli::Cli::try_parse_from(args).unwrap();
        let crate::cli::Command::Run(run) = cli.command else {
            panic!("run")
        };
        assert_eq!(run.iface.as_deref(), Some("eth0"));
        assert_eq!(run.metrics, Some("127.0.0.1:9477".parse().unwrap()));
        assert!(run.quiet);
    }

    #[test]
    fn mistakes_are_named() {
        let e = |config: &str| expand_with(config, &[]).unwrap_err().to_string();
        assert!(e("wramup = 5\n").contains("`wramup` is not an option of `run`"));
        assert!(e("quiet = \"yes\"\n").contains("`quiet` takes true or false"));
        assert!(e("warmup = true\n").contains("`warmup` takes a value"));
        assert!(e("warmup = [\n").contains("is not valid TOML"));
        assert!(e("config = \"x\"\n").contains("cannot name another"));
    }
}
