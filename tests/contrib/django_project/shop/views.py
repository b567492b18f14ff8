"""The view that enqueues: an order is saved and confirmed by a task, enqueued only if the
order's transaction commits."""
from django.db import transaction
from django.http import JsonResponse

from .models import Order
from .tasks import audit, confirm_order


def place_order(request):
    with transaction.atomic():
        order = Order.objects.create(total=int(request.POST['total']))
        result = confirm_order(order.pk)
        audit('order %d' % order.pk)  # a plain task: enqueued at once, whatever happens next
        if request.POST.get('fail'):
            raise RuntimeError('payment refused')  # rolls the transaction back
    return JsonResponse({'order': order.pk, 'result': result.id})
