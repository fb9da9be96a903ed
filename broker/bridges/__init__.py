"""Other protocols served by the broker: Majordomo (MDP/0.2).
"""
