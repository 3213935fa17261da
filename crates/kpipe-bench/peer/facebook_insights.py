"""Pulls daily Facebook ads insights with dlt's REST API source and writes them as Parquet.

The Python peer of kpipe's benchmark (scenario "peer"): the same ad accounts, window, fields and
page size as kpipe's Facebook source, against the same simulated Graph API. dlt follows each
listing's `paging.next` link (shared/apis/facebook.md, section 2), normalizes the rows (the
`actions` and `action_values` lists become child tables) and loads them into Parquet files.

Usage: facebook_insights.py BASE_URL TOKEN ACCOUNT_IDS SINCE UNTIL PAGE_SIZE OUTPUT_DIR
(ACCOUNT_IDS comma-separated, without `act_`). Prints one JSON line: rows loaded per table.
"""

import json
import os
import sys

FIELDS = ",".join([
    "account_id", "account_name", "account_currency", "ad_id", "ad_name", "impressions", "reach",
    "clicks", "inline_link_clicks", "spend", "actions", "action_values", "date_start", "date_stop",
])


def main() -> None:
    base_url, token, accounts, since, until, page_size, output = sys.argv[1:8]
    # dlt keeps its state and traces under DLT_DATA_DIR / the project dir: keep both in the
    # output directory, so runs never share state.
    os.environ["DLT_DATA_DIR"] = os.path.join(output, "dlt-data")
    os.environ["DLT_PROJECT_DIR"] = output
    os.environ["RUNTIME__LOG_LEVEL"] = "WARNING"
    os.environ["NORMALIZE__WORKERS"] = "1"

    import dlt
    from dlt.sources.rest_api import rest_api_source

    # dlt reads `{...}` in parameters as placeholders: literal braces are doubled.
    time_range = json.dumps({"since": since, "until": until}, separators=(",", ":"))
    time_range = time_range.replace("{", "{{").replace("}", "}}")
    resources = [
        {
            "name": f"insights_{account}",
            "table_name": "ads_insights",
            "endpoint": {
                "path": f"act_{account}/insights",
                "params": {
                    "level": "ad",
                    "fields": FIELDS,
                    "time_range": time_range,
                    "time_increment": "1",
                    "use_account_attribution_setting": "true",
                    "limit": page_size,
                },
                "data_selector": "data",
            },
        }
        for account in accounts.split(",")
    ]
    source = rest_api_source(
        {
            "client": {
                "base_url": base_url.rstrip("/") + "/v25.0/",
                "auth": {"type": "bearer", "token": token},
                "paginator": {"type": "json_link", "next_url_path": "paging.next"},
            },
            "resources": resources,
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name="facebook_insights",
        destination=dlt.destinations.filesystem(bucket_url="file://" + os.path.join(output, "parquet")),
        dataset_name="facebook",
        pipelines_dir=os.path.join(output, "pipelines"),
    )
    pipeline.run(source, loader_file_format="parquet")
    counts = pipeline.last_trace.last_normalize_info.row_counts
    print(json.dumps({"row_counts": {k: v for k, v in counts.items() if not k.startswith("_dlt")}}))


if __name__ == "__main__":
    main()
