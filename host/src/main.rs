use clap::Parser;

use wc_host::cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    wc_host::logging::init(cli.quiet);
    let result = match cli.command {
        Some(Command::Plugin(command)) => wc_host::plugin_cmd::run(command),
        Some(Command::GenData(args)) => gen_data(&args),
        Some(Command::Worker(args)) => wc_host::worker::run_cli(args),
        Some(Command::Top(args)) => wc_host::query::query(args, false),
        Some(Command::Status(args)) => wc_host::query::query(args, true),
        None => wc_host::job::run(cli.run, cli.quiet),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(2);
        }
    }
}

fn gen_data(args: &wc_host::cli::GenDataArgs) -> anyhow::Result<i32> {
    let opts = wc_host::gen_data::GenOptions { total_bytes: args.mb << 20, files: args.files, seed: args.seed };
    let report = wc_host::gen_data::generate(&args.dir, &opts)?;
    println!("wrote {} files, {} rows, {} bytes to {}", report.files.len(), report.rows, report.bytes, args.dir.display());
    Ok(0)
}
