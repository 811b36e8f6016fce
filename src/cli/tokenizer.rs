//! `hhi tokenizer train`: a byte-level BPE vocabulary from text files.

use hhi::io::tokenizer::Tokenizer;
use hhi::Result;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Train a byte-level BPE (GPT-2 style, `<|endoftext|>` = id 0) on text files.
    Train {
        /// UTF-8 text files to learn from.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Vocabulary size, special token and 256 byte tokens included.
        #[arg(long, default_value_t = 1024)]
        vocab_size: usize,
        /// Where to write tokenizer.json.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the token ids of a text.
    Encode {
        #[arg(long)]
        tokenizer: PathBuf,
        text: String,
    },
}

pub fn run(c: Command) -> Result<()> {
    match c {
        Command::Train { files, vocab_size, out } => {
            let tok = Tokenizer::train_bpe(&files, vocab_size)?;
            tok.save(&out)?;
            say!("wrote {} ({} tokens)", out.display(), tok.vocab_size());
        }
        Command::Encode { tokenizer, text } => {
            let ids = Tokenizer::load(&tokenizer)?.encode(&text)?;
            say!("{}", ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" "));
        }
    }
    Ok(())
}
