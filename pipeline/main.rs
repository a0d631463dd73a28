fn main() {
    std::process::exit(kiban::cli::main());
}
