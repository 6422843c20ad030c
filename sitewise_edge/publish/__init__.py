"""Destinations that read the store from durable cursors: the SiteWise publisher and the S3 export.

See README.md in this folder for the pipeline, the retry policy and the dead letters.
"""

from sitewise_edge.publish.base import LogSource, PartitionSource, Publisher
from sitewise_edge.publish.deadletter import DeadLetter, DeadLetterFilter, DeadLetterStore
from sitewise_edge.publish.retry import RetryPolicy, s3_policy, sitewise_policy
from sitewise_edge.publish.s3 import S3ExportTask
from sitewise_edge.publish.sitewise import SitewisePublisherTask

__all__ = ["DeadLetter", "DeadLetterFilter", "DeadLetterStore", "LogSource", "PartitionSource", "Publisher",
           "RetryPolicy", "S3ExportTask", "SitewisePublisherTask", "s3_policy", "sitewise_policy"]
