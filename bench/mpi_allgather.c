/* The time of a bare MPI_Allgather of N floats per rank, 100 repetitions, three times:
 *   mpicc -O2 bench/mpi_allgather.c -o /tmp/allgather
 *   scripts/mpirun.sh -np 2 /tmp/allgather 61706      # lenet5's gradient */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const int n = argc > 1 ? atoi(argv[1]) : 61706;
    float *mine = calloc((size_t)n, sizeof(float)), *all = calloc((size_t)n * (size_t)size, sizeof(float));
    for (int round = 0; round < 3; round++) {
        MPI_Barrier(MPI_COMM_WORLD);
        const double start = MPI_Wtime();
        for (int i = 0; i < 100; i++) MPI_Allgather(mine, n, MPI_FLOAT, all, n, MPI_FLOAT, MPI_COMM_WORLD);
        const double t = (MPI_Wtime() - start) / 100;
        if (rank == 0)
            printf("%d floats: %.3f ms per allgather, %.2f GB/s received\n", n, t * 1e3,
                   (double)n * 4 * (size - 1) / t / 1e9);
    }
    free(mine);
    free(all);
    MPI_Finalize();
    return 0;
}
