//! The Python virtualenv: the readers import, and pyarrow reaches the S3 server with `env()`.

use std::process::Command;

use kpipe_testkit::services::{python, s3_server};
use object_store::ObjectStoreExt;
use object_store::path::Path;

fn run_python(script: &str, env: Vec<(String, String)>) -> String {
    let python = python().unwrap_or_else(|e| panic!("{e}"));
    let mut command = Command::new(python);
    // Only `env` configures the child's AWS clients, not this process's AWS variables.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    let output = command.args(["-c", script]).envs(env).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "python failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn the_readers_import() {
    let out = run_python(
        "import duckdb, moto, pandas, polars, pyarrow\n\
         print(duckdb.__version__, moto.__version__, pandas.__version__, polars.__version__, pyarrow.__version__)",
        Vec::new(),
    );
    assert_eq!(out.split_whitespace().count(), 5, "{out}");
}

/// pyarrow writes Parquet to the bucket and reads it back, configured only by `env()`;
/// `object_store` then sees a Parquet file.
#[tokio::test]
async fn pyarrow_writes_and_reads_parquet_on_s3_with_env() {
    let s3 = s3_server().unwrap_or_else(|e| panic!("{e}"));
    // pyarrow reads AWS_ENDPOINT_URL when it makes the filesystem from an s3:// URL (as here),
    // not in a bare `S3FileSystem()`.
    let script = format!(
        "import pyarrow as pa, pyarrow.parquet as pq\n\
         pq.write_table(pa.table({{'day': ['2024-01-01', '2024-01-02'], 'clicks': [3, 4]}}), '{url}')\n\
         t = pq.read_table('{url}')\n\
         print(t.num_rows, sum(t.column('clicks').to_pylist()))",
        url = s3.url("py/kpis.parquet")
    );
    assert_eq!(run_python(&script, s3.env()).trim(), "2 7");

    let bytes = s3.object_store().get(&Path::from("py/kpis.parquet")).await.unwrap().bytes().await.unwrap();
    assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"), "not a Parquet file");
}
