"""The run page: a browser view of every kind of run, served by the API app itself.

Server-rendered templates and one small script; no build chain, nothing from a CDN. Each
kind of run plugs in with ``registry.register`` (see app/pipelines/page.py), so this
package names no domain. Sign-in is a cookie session (see session.py).
"""
