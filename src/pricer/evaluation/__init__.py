"""Stage 4, evaluation: the reference's Tester (improved) and the leaderboard beside its published results."""
