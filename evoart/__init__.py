"""evoart: evolve GAN genomes with a genetic algorithm and browse what they make."""

__version__ = "0.1.0"
