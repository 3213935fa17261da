//! Opening (and creating) a Delta table on the output's storage: delta-rs reads and writes the
//! transaction log through the storage layer's own `object_store` client, and commits with
//! put-if-absent (`If-None-Match: *` on S3, a create-only write on Azure and GCS, a link on a
//! local disk), so that concurrent writers never overwrite each other's commit.

use std::sync::{Arc, Once};

use arrow_schema::{DataType, Schema, TimeUnit};
use deltalake_core::DeltaTable;
use deltalake_core::errors::DeltaTableError;
use deltalake_core::kernel::transaction::CommitProperties;
use deltalake_core::kernel::{DataType as DeltaType, StructField};
use deltalake_core::logstore::{
    LogStore, LogStoreFactory, ObjectStoreRef, StorageConfig, default_logstore, logstore_factories,
};
use deltalake_core::operations::create::CreateBuilder;
use deltalake_core::protocol::SaveMode;
use deltalake_core::table::builder::DeltaTableBuilder;
use kpipe_core::SinkError;
use kpipe_storage::Storage;
use url::Url;

/// The default log store (commits by put-if-absent) for the object-store schemes: delta-rs
/// registers it only for local and in-memory tables, and the storage layer's clients already
/// do conditional writes on every cloud.
#[derive(Debug, Default)]
struct ConditionalPutLogStore;

impl LogStoreFactory for ConditionalPutLogStore {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> Result<Arc<dyn LogStore>, DeltaTableError> {
        Ok(default_logstore(prefixed_store, root_store, location, options))
    }
}

fn register_schemes() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        let factories = logstore_factories();
        for scheme in ["s3://", "gs://", "az://"] {
            if let Ok(url) = Url::parse(scheme) {
                factories.insert(url, Arc::new(ConditionalPutLogStore));
            }
        }
    });
}

pub(crate) fn delta_error(what: &str, e: impl std::fmt::Display) -> SinkError {
    SinkError::new(format!("{what}: {e}"))
}

/// The table at `key` of `storage`, loaded at its newest version, or `None` when there is no
/// table there yet.
pub(crate) async fn load(store: ObjectStoreRef, url: Url) -> Result<(DeltaTable, bool), SinkError> {
    register_schemes();
    let mut table = DeltaTableBuilder::from_url(url.clone())
        .and_then(|b| b.with_storage_backend(store, url.clone()).build())
        .map_err(|e| delta_error(&format!("cannot open the Delta table {url}"), e))?;
    match table.load().await {
        Ok(()) => Ok((table, true)),
        Err(DeltaTableError::NotATable(_)) => Ok((table, false)),
        Err(e) => Err(delta_error(&format!("cannot read the Delta table {url}"), e)),
    }
}

/// The table at `key`, created with `schema` and `partition_columns` if there is none. Several
/// processes may create it at once: one creation wins, the others load it.
pub(crate) async fn open_or_create(
    store: ObjectStoreRef,
    url: Url,
    name: &str,
    schema: &Schema,
    partition_columns: &[&str],
) -> Result<DeltaTable, SinkError> {
    let (table, exists) = load(Arc::clone(&store), url.clone()).await?;
    if exists {
        return Ok(table);
    }
    let columns = schema
        .fields()
        .iter()
        .map(|f| Ok(StructField::new(f.name().clone(), delta_type(f.data_type())?, f.is_nullable())));
    let columns: Vec<StructField> = columns.collect::<Result<_, SinkError>>()?;
    let created = CreateBuilder::new()
        .with_log_store(table.log_store())
        .with_table_name(name)
        .with_comment(format!("kpipe {name}: see docs/schema.md"))
        .with_columns(columns)
        .with_partition_columns(partition_columns.iter().copied())
        .with_save_mode(SaveMode::Ignore)
        // A creation that finds version 0 taken must not be retried as version 1: that would
        // commit a second CREATE TABLE (a new table id) over the winner's table.
        .with_commit_properties(CommitProperties::default().with_max_retries(0))
        .await;
    match created {
        Ok(table) => Ok(table),
        Err(create_error) => match load(store, url.clone()).await? {
            (table, true) => Ok(table),
            _ => Err(delta_error(&format!("cannot create the Delta table {url}"), create_error)),
        },
    }
}

/// The store and URL of the table `key` below the output.
pub(crate) fn locate(storage: &Storage, key: &str) -> Result<(ObjectStoreRef, Url), SinkError> {
    storage.object_store_at(key).map_err(|e| {
        SinkError::new(format!("cannot reach the Delta table {}", storage.describe_key(key))).with_source(e)
    })
}

fn delta_type(data_type: &DataType) -> Result<DeltaType, SinkError> {
    Ok(match data_type {
        DataType::Utf8 => DeltaType::STRING,
        DataType::Boolean => DeltaType::BOOLEAN,
        DataType::Date32 => DeltaType::DATE,
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => DeltaType::TIMESTAMP,
        DataType::Decimal128(precision, scale) => {
            let scale = u8::try_from(*scale)
                .map_err(|_| SinkError::new(format!("negative decimal scale {scale}")))?;
            DeltaType::decimal(*precision, scale).map_err(|e| delta_error("unsupported decimal", e))?
        }
        other => return Err(SinkError::new(format!("no Delta type for the column type {other}"))),
    })
}
