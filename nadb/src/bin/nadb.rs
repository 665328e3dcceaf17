//! The `nadb` command-line tool; everything it does is in `nadb::cli`.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(nadb::cli::run(std::env::args_os()))
}
