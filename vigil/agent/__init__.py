"""The collector agent, `vigil agent`: psutil metrics, an on-disk spool, a sender.

It runs on monitored machines that have no database, so nothing under this
package imports Django: only the standard library, psutil and orjson.
"""
