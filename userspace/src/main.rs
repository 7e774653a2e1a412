fn main() -> std::process::ExitCode {
    ml_sniffing::cli::main()
}
