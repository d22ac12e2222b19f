//! The `markwatch` binary: parse the command line, set up logging, run, map errors to exit codes.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// jemalloc: a crawl costs less CPU per page than with glibc's malloc (docs/benchmarks.md).
/// Its options are in .cargo/config.toml.
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    if args.prints_and_exits() {
        exit_quietly_on_closed_pipe();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("markwatch: cannot start the async runtime: {e}");
            return cli::EXIT_FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("markwatch: {}", describe(&e));
            cli::exit_code_for(&e)
        }
    }
}

/// The error and its causes, each cause once: many of our errors already end with their
/// cause's text, which `{:#}` would print a second time.
fn describe(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.ends_with(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

/// A command piped into `head` or `grep -q` ends silently when its reader goes away, as Unix
/// tools do, instead of panicking on its next print: Rust ignores SIGPIPE by default. Servers
/// keep ignoring it, so a closed log socket can never kill the daemon; sockets the commands
/// use themselves are written with MSG_NOSIGNAL and get an error instead.
fn exit_quietly_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restores the default disposition of one signal, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
