"""The durable stores: SQLite (store) and PostgreSQL (pgstore), their schema versions
(migrations), and which broker leads on PostgreSQL (leadership, lease).
"""
