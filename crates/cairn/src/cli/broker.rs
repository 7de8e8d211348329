//! `cairn broker configs|alter-config`: a broker's configs, as Kafka's
//! `kafka-configs.sh --entity-type brokers` shows and changes them (DescribeConfigs and
//! IncrementalAlterConfigs on the BROKER resource). Changes are dynamic broker configs: they
//! take effect without a restart where the broker supports it, and survive one.

use anyhow::{anyhow, bail};

use super::cluster::Cluster;
use super::error_code::KafkaError;
use super::group::format_table;
use super::topic::{alter_configs, describe_configs_request, RESOURCE_BROKER, SOURCE_DEFAULT};
use super::{BrokerCommand, ClientArgs, Output};

/// Kafka's names of `configSource` values.
fn source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "DYNAMIC_CLIENT_METRICS_CONFIG",
        8 => "DYNAMIC_GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

/// The broker to ask: the one named, else the one the bootstrap connection reaches (the
/// first in Metadata's list when that cannot be told).
async fn target(cluster: &mut Cluster, broker: Option<i32>) -> anyhow::Result<i32> {
    // Metadata also tells the cluster where each broker is.
    cluster.metadata(Some(&[])).await?;
    if let Some(id) = broker {
        return Ok(id);
    }
    cluster
        .bootstrap_node()
        .ok_or_else(|| anyhow!("the cluster's metadata names no broker"))
}

pub(crate) async fn run(client: &ClientArgs, command: &BrokerCommand) -> anyhow::Result<()> {
    let mut cluster = Cluster::connect(client).await?;
    match command {
        BrokerCommand::Configs {
            broker,
            all,
            output,
        } => {
            let id = target(&mut cluster, *broker).await?;
            let name = id.to_string();
            let response = cluster
                .leader(id)
                .await?
                .call(|v| describe_configs_request(v, RESOURCE_BROKER, &name))
                .await?;
            let result = response
                .results
                .first()
                .ok_or_else(|| anyhow!("the broker's DescribeConfigs answer is empty"))?;
            KafkaError::check(result.error_code, result.error_message.as_ref())
                .map_err(|e| anyhow!(e).context(format!("cannot describe broker {id}")))?;
            let mut rows: Vec<(String, Option<String>, i8, bool, bool)> = result
                .configs
                .iter()
                .filter(|c| *all || c.config_source != SOURCE_DEFAULT)
                .map(|c| {
                    let value = if c.is_sensitive {
                        Some("[hidden]".to_string())
                    } else {
                        c.value.as_ref().map(|v| v.to_string())
                    };
                    (
                        c.name.to_string(),
                        value,
                        c.config_source,
                        c.read_only,
                        c.is_sensitive,
                    )
                })
                .collect();
            rows.sort();
            match output {
                Output::Table => {
                    if rows.is_empty() {
                        eprintln!("broker {id} has no config set beyond the defaults (--all lists every one)");
                        return Ok(());
                    }
                    let table: Vec<Vec<String>> = rows
                        .iter()
                        .map(|(name, value, source, read_only, _)| {
                            vec![
                                name.clone(),
                                value.clone().unwrap_or_else(|| "-".to_string()),
                                source_name(*source).to_string(),
                                if *read_only { "yes" } else { "no" }.to_string(),
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        format_table(&["NAME", "VALUE", "SOURCE", "READ-ONLY"], &table)
                    );
                }
                Output::Json => {
                    let list: Vec<serde_json::Value> = rows
                        .iter()
                        .map(|(name, value, source, read_only, sensitive)| {
                            serde_json::json!({
                                "name": name,
                                "value": if *sensitive { None } else { value.clone() },
                                "source": source_name(*source),
                                "read_only": read_only,
                                "sensitive": sensitive,
                            })
                        })
                        .collect();
                    println!("{}", serde_json::json!({ "broker": id, "configs": list }));
                }
            }
        }
        BrokerCommand::AlterConfig {
            broker,
            configs,
            delete_configs,
        } => {
            if configs.is_empty() && delete_configs.is_empty() {
                bail!("nothing to change: give --config KEY=VALUE or --delete-config KEY");
            }
            let id = target(&mut cluster, *broker).await?;
            let name = id.to_string();
            alter_configs(
                cluster.leader(id).await?,
                RESOURCE_BROKER,
                &name,
                configs,
                delete_configs,
            )
            .await
            .map_err(|e| e.context(format!("cannot alter broker {id}'s configs")))?;
            eprintln!("altered configs of broker {id}");
        }
    }
    Ok(())
}
