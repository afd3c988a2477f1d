/* Intrusive doubly linked lists: nodes are structs with `prev` and `next` pointers, the list is
 * a pointer to its first node (NULL when empty). Used for connections and clients, which come
 * and go in any order. */
#ifndef SPILLWAY_DLIST_H
#define SPILLWAY_DLIST_H

#define DLIST_PUSH(head, n)                                                                        \
    do {                                                                                           \
        (n)->prev = NULL;                                                                          \
        (n)->next = (head);                                                                        \
        if (head)                                                                                  \
            (head)->prev = (n);                                                                    \
        (head) = (n);                                                                              \
    } while (0)

#define DLIST_UNLINK(head, n)                                                                      \
    do {                                                                                           \
        if ((n)->prev)                                                                             \
            (n)->prev->next = (n)->next;                                                           \
        else                                                                                       \
            (head) = (n)->next;                                                                    \
        if ((n)->next)                                                                             \
            (n)->next->prev = (n)->prev;                                                           \
    } while (0)

#endif
