//! `geolb-image`: writes the filter module's OCI image layout, and inspects a layout the
//! way Istio's image fetcher would read the image (docs/module-image.md).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use geolb_image::{Image, read_layout};

#[derive(Parser)]
#[command(name = "geolb-image", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write MODULE as an OCI image layout into DIR (replacing it); print the manifest digest.
    Build {
        /// The .wasm module.
        module: PathBuf,
        /// The layout directory to write.
        #[arg(short, long)]
        out: PathBuf,
        /// The tag in index.json (`org.opencontainers.image.ref.name`).
        #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
        tag: String,
        /// Also write the manifest digest (`sha256:<hex>` and a newline) to this file.
        #[arg(long)]
        digest_file: Option<PathBuf>,
    },
    /// Check the image in layout DIR as Istio reads it; print its digest, tag and module.
    Inspect {
        /// The layout directory.
        dir: PathBuf,
        /// The image's tag (default: the layout's only image).
        #[arg(long)]
        tag: Option<String>,
        /// Write the extracted plugin.wasm here.
        #[arg(long)]
        extract: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("geolb-image: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Build {
            module,
            out,
            tag,
            digest_file,
        } => {
            let bytes = std::fs::read(&module).map_err(|e| format!("{}: {e}", module.display()))?;
            let image = Image::build(&bytes, &tag).map_err(|e| e.to_string())?;
            image.write_layout(&out).map_err(|e| e.to_string())?;
            if let Some(f) = digest_file {
                std::fs::write(&f, format!("{}\n", image.manifest_digest()))
                    .map_err(|e| format!("{}: {e}", f.display()))?;
            }
            println!("{}", image.manifest_digest());
        }
        Command::Inspect { dir, tag, extract } => {
            let image = read_layout(&dir, tag.as_deref()).map_err(|e| e.to_string())?;
            println!("manifest digest: {}", image.manifest_digest);
            println!("tag: {}", image.tag.as_deref().unwrap_or("(none)"));
            println!(
                "plugin.wasm: {} bytes, {}",
                image.module.len(),
                geolb_image::digest_of(&image.module)
            );
            if let Some(f) = extract {
                std::fs::write(&f, &image.module).map_err(|e| format!("{}: {e}", f.display()))?;
            }
        }
    }
    Ok(())
}
